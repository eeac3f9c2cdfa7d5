"""
PRACK (RFC 3262), session timers (RFC 4028) and UPDATE (RFC 3311) end to
end against SIPp: an incoming call whose caller requires 100rel gets its
180 reliably and LinkRTC answers the PRACK before the 200; an outgoing
call through a trunk that sends a reliable 183 is PRACKed by LinkRTC; a
session SIPp refreshes with UPDATE and re-INVITE lives past its interval
(and a re-INVITE LinkRTC cannot relay gets 488 without ending it); an
UPDATE before the answer gets 200 (no body) or 488 (an offer); a
session LinkRTC refreshes gets UPDATEs; a session nobody refreshes, or
whose refresh fails, is ended by LinkRTC's BYE, with the reason in the
CDR; an interval below Min-SE gets 422. Min-SE is set to 2 s
(C{--min-se 2}) so that intervals of 3-4 s keep the tests short.
"""

from linkrtc.test.e2e.test_calls import _CallTestBase
from linkrtc.test.e2e.test_outbound import _OutboundBase


class IncomingTests(_CallTestBase):
    """SIPp calls LinkRTC (UAC); a WebSocket client answers."""

    options = ("--min-se", "2")

    def test_reliableRinging(self):
        """Require: 100rel: a reliable 180, 200 to SIPp's PRACK, then the 200 OK."""
        bob = self.client("bob", "--action", "answer", "--answer-after", "1")
        self.sipp("uac_100rel.xml", "bob", "-d", "300")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        self.assertIn("confirmed", bob.states())
        [cdr] = self.cdrs(1)
        self.assertEqual((cdr["cause"], cdr["dropped_by"]), (200, "usr"))

    def test_earlyUpdate(self):
        """
        UPDATEs before the answer (RFC 3311 §5.2): one without a body gets
        200 with a Contact, one offering only G.729 gets 488; the call is
        then answered and ends with SIPp's BYE (cause 200).
        """
        bob = self.client("bob", "--action", "answer", "--answer-after", "2")
        self.sipp("uac_early_update.xml", "bob")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        self.assertIn("confirmed", bob.states())
        [cdr] = self.cdrs(1)
        self.assertEqual((cdr["cause"], cdr["dropped_by"]), (200, "usr"))

    def test_refreshedByUpdateAndReinvite(self):
        """
        A 4 s session refreshed by UPDATE and re-INVITE outlives its
        interval; a re-INVITE offering only G.729 gets 488 and the call
        stays up until SIPp's BYE (cause 200).
        """
        bob = self.client("bob", "--action", "answer")
        self.sipp("uac_session_refresh.xml", "bob")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        [cdr] = self.cdrs(1)
        self.assertEqual((cdr["cause"], cdr["dropped_by"]), (200, "usr"))

    def test_refreshedByUs(self):
        """refresher=uas: LinkRTC sends UPDATE at half the interval, twice."""
        bob = self.client("bob", "--action", "answer")
        self.sipp("uac_session_refreshed_by_us.xml", "bob")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        [cdr] = self.cdrs(1)
        self.assertEqual(cdr["cause"], 200)

    def test_expiry(self):
        """Nobody refreshes a 3 s session: LinkRTC sends BYE; the CDR says why."""
        bob = self.client("bob", "--action", "answer")
        self.sipp("uac_session_expire.xml", "bob")
        dropped = bob.waitFor(lambda m: m.get("state") == "dropped")
        self.assertIsNotNone(dropped)
        [cdr] = self.cdrs(1)
        self.assertEqual((cdr["cause"], cdr["reason"], cdr["dropped_by"]),
                         (408, "session-timer-expired", "sys"))

    def test_refreshFails(self):
        """Our refresh UPDATE gets 481: LinkRTC sends BYE; the CDR says why."""
        bob = self.client("bob", "--action", "answer")
        self.sipp("uac_session_refresh_fails.xml", "bob")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        [cdr] = self.cdrs(1)
        self.assertEqual((cdr["cause"], cdr["reason"]),
                         (408, "session-refresh-failed (481 to UPDATE)"))

    def test_intervalTooSmall(self):
        """A 1 s session is refused 422 with Min-SE 2; asked again with it, the call goes."""
        bob = self.client("bob", "--action", "answer")
        self.sipp("uac_session_422.xml", "bob")
        bob.waitFor(lambda m: m.get("state") == "dropped")
        [cdr] = self.cdrs(1)
        self.assertEqual(cdr["cause"], 200)


class OutgoingTests(_OutboundBase):
    """A client dials through a trunk that SIPp plays (UAS)."""

    def test_reliableEarlyMedia(self):
        """
        The trunk's 183 with SDP is reliable: LinkRTC PRACKs it (RAck), the
        client gets its SDP as 'answer', then the 200; the trunk hangs up.
        """
        sipp = self.trunk("uas_100rel.xml", "-d", "500")
        client = self.dial("5550100")
        self.assertSIPp(sipp)
        client.waitFor(lambda m: m.get("state") == "dropped")
        self.assertIn("m=audio", client.waitFor("answer")["sdp"])
        self.assertIn("confirmed", client.states())
        [cdr] = self.cdrs()
        self.assertEqual((cdr["call_dir"], cdr["cause"]), ("outbound", 200))
