"""
Tests for L{linkrtc.sip.sessiontimer}: session timers (RFC 4028) and
UPDATE (RFC 3311) on both INVITE legs, on a L{Clock}.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc import metrics
from linkrtc.error import TransactionTimeout
from linkrtc.sip import sessiontimer
from linkrtc.sip.sessiontimer import (
    EXPIRED,
    SessionTimerSettings,
    tooSmall,
    uacRetry,
    uacTerms,
    uasTerms,
)
from linkrtc.sip.test.test_outbound import SDP as CLIENT_SDP
from linkrtc.sip.test.test_outbound import LegMixin
from linkrtc.sip.test.test_useragent import SDP, UserAgentMixin, request

SETTINGS = SessionTimerSettings()


def _message(*headers):
    return request("INVITE", extra=headers)


class NegotiationTests(SynchronousTestCase):
    """The header arithmetic of RFC 4028 §7 and §9."""

    def test_settings(self):
        """Defaults 1800 s and Min-SE 90 s; Min-SE above Session-Expires is refused."""
        self.assertEqual((SETTINGS.sessionExpires, SETTINGS.minSE), (1800, 90))
        self.assertRaises(ValueError, SessionTimerSettings, 60, 90)
        self.assertRaises(ValueError, SessionTimerSettings, 0, 0)

    def test_tooSmall(self):
        """Below our Min-SE with timer supported: 422 with ours; otherwise no."""
        self.assertEqual(tooSmall(_message("Supported: timer", "Session-Expires: 60"),
                                  SETTINGS), 90)
        self.assertIsNone(tooSmall(_message("Supported: timer", "Session-Expires: 90"),
                                   SETTINGS))
        self.assertIsNone(tooSmall(_message("Session-Expires: 60"), SETTINGS))
        self.assertIsNone(tooSmall(_message("Supported: timer"), SETTINGS))

    def test_uasTerms(self):
        """What a UAS grants: the asked interval (at most ours), the refresher asked."""
        self.assertEqual(uasTerms(_message("Supported: timer", "Session-Expires: 600"),
                                  SETTINGS), (600, "uac"))
        self.assertEqual(uasTerms(_message("Supported: timer",
                                           "Session-Expires: 600;refresher=uas"),
                                  SETTINGS), (600, "uas"))
        self.assertEqual(uasTerms(_message("Supported: timer", "Session-Expires: 7200"),
                                  SETTINGS), (1800, "uac"))
        self.assertEqual(uasTerms(_message("Supported: timer"), SETTINGS), (1800, "uac"))
        # a caller without timer (a proxy asked): we refresh, at least Min-SE
        self.assertEqual(uasTerms(_message("Session-Expires: 30"), SETTINGS), (90, "uas"))
        self.assertEqual(uasTerms(_message("Supported: timer", "Session-Expires: 100",
                                           "Min-SE: 120"), SETTINGS), (120, "uac"))
        self.assertIsNone(uasTerms(_message(), SETTINGS))
        self.assertIsNone(uasTerms(_message("Supported: timer"), None))

    def test_uac(self):
        """A 422's Min-SE is asked again only if larger; a 2xx gives the terms."""
        response = _message("Min-SE: 300")
        self.assertEqual(uacRetry(response, 90), 300)
        self.assertIsNone(uacRetry(response, 300))
        self.assertIsNone(uacRetry(_message(), 90))
        self.assertEqual(uacTerms(_message("Session-Expires: 300;refresher=uas")),
                         (300, "uas"))
        self.assertEqual(uacTerms(_message("x: 300")), (300, "uac"))
        self.assertIsNone(uacTerms(_message()))
        self.assertIsNone(uacTerms(_message("Session-Expires: soon")))


class ServerLegTests(UserAgentMixin, SynchronousTestCase):
    """Session timers on InviteServerLeg (we are the UAS of the dialog)."""

    def confirmed(self, *headers):
        tx, leg = self.invite(extra=("Content-Type: application/sdp",) + headers)
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        del self.handler.listener.events[:]
        return tx, leg

    def answer(self, request, status):
        """The far end answers our in-dialog C{request}."""
        for sent, _, listener in self.transactions.sent:
            if sent is request:
                response = request.createResponse(status)
                listener.responseReceived(response, None)
                return response
        raise AssertionError("not sent")

    def sent(self, method):
        return [r for r, _, _ in self.transactions.sent if r.method == method]

    def test_422(self):
        """An INVITE asking for less than our Min-SE: 422 with Min-SE, no leg."""
        tx = self.receive(request("INVITE", extra=("Supported: timer", "Session-Expires: 30")))
        self.assertEqual(tx.statuses, [422])
        self.assertEqual(tx.responses[0].headers.get("Min-SE"), "90")
        self.assertEqual(self.handler.legs, [])

    def test_noTimer(self):
        """A caller without timer nor Session-Expires: no header, no timer."""
        tx, leg = self.confirmed()
        self.assertIsNone(tx.responses[-1].headers.get("Session-Expires"))
        self.assertIsNone(leg.sessionTimer)

    def test_weRefreshByUpdate(self):
        """
        refresher=uas: the 2xx says so (Require: timer); at half the
        interval we send UPDATE (the caller allows it) with Session-Expires,
        and its 2xx starts a new interval.
        """
        tx, leg = self.confirmed("Supported: timer", "Session-Expires: 600;refresher=uas",
                                 "Allow: INVITE, ACK, BYE, UPDATE")
        ok = tx.responses[-1]
        self.assertEqual(ok.headers.get("Session-Expires"), "600;refresher=uas")
        self.assertEqual(ok.headers.get("Require"), "timer")
        self.clock.advance(299)
        self.assertEqual(self.sent("UPDATE"), [])
        self.clock.advance(1)
        [update] = self.sent("UPDATE")
        self.assertEqual(update.headers.get("Session-Expires"), "600;refresher=uac")
        self.assertFalse(update.body)
        self.answer(update, 200)
        self.clock.advance(299)
        self.assertEqual(len(self.sent("UPDATE")), 1)
        self.clock.advance(1)
        self.assertEqual(len(self.sent("UPDATE")), 2)
        self.assertEqual(self.sent("BYE"), [])

    def test_weRefreshByReinvite(self):
        """Without UPDATE in the caller's Allow, the refresh is a re-INVITE with our SDP."""
        tx, leg = self.confirmed("Supported: timer", "Session-Expires: 600;refresher=uas")
        self.clock.advance(300)
        [reinvite] = self.sent("INVITE")
        self.assertEqual(reinvite.body, SDP)
        self.assertEqual(reinvite.headers.get("Session-Expires"), "600;refresher=uac")
        self.answer(reinvite, 200)
        self.assertEqual(self.transport.requests[-1][0].method, "ACK")

    def test_expiry(self):
        """
        refresher=uac and no refresh: BYE at interval - min(32, interval/3),
        and the listener hears why.
        """
        ends = metrics.SIP_SESSION_TIMER_ENDS.labels("expired")
        before = ends._value.get()
        tx, leg = self.confirmed("Supported: timer", "Session-Expires: 600")
        self.assertEqual(tx.responses[-1].headers.get("Session-Expires"), "600;refresher=uac")
        self.clock.advance(567.9)
        self.assertEqual(self.sent("BYE"), [])
        self.clock.advance(0.1)
        self.assertEqual(len(self.sent("BYE")), 1)
        self.assertEqual(self.handler.listener.events, [("terminated", EXPIRED)])
        self.assertEqual(ends._value.get(), before + 1)

    def test_refreshByPeer(self):
        """
        The caller's UPDATE (without SDP) is a refresh: its 200 carries
        Session-Expires and a new interval starts.
        """
        tx, leg = self.confirmed("Supported: timer", "Session-Expires: 600")
        self.clock.advance(500)
        update = self.receive(request("UPDATE", toTag=leg.localTag, cseq=2,
                                      extra=("Supported: timer",
                                             "Session-Expires: 600;refresher=uac")))
        [(_, received, respond)] = self.handler.listener.events
        self.assertEqual(received.method, "UPDATE")
        respond(200)
        self.assertEqual(update.statuses, [200])
        self.assertEqual(update.responses[0].headers.get("Session-Expires"),
                         "600;refresher=uac")
        self.assertEqual(update.responses[0].headers.get("Require"), "timer")
        self.clock.advance(567.9)
        self.assertEqual(self.sent("BYE"), [])
        self.clock.advance(0.1)
        self.assertEqual(len(self.sent("BYE")), 1)

    def test_refreshTooSmall(self):
        """A re-INVITE or UPDATE asking for less than Min-SE: 422, the listener hears nothing."""
        tx, leg = self.confirmed("Supported: timer", "Session-Expires: 600")
        update = self.receive(request("UPDATE", toTag=leg.localTag, cseq=2,
                                      extra=("Supported: timer", "Session-Expires: 10")))
        self.assertEqual(update.statuses, [422])
        self.assertEqual(update.responses[0].headers.get("Min-SE"), "90")
        self.assertEqual(self.handler.listener.events, [])

    def test_refreshFails(self):
        """
        Our refresh answered 408 or 481, or timing out: BYE, and the
        listener hears a session-refresh-failed reason.
        """
        for outcome, reason in ((408, "session-refresh-failed (408 to UPDATE)"),
                                (481, "session-refresh-failed (481 to UPDATE)"),
                                (None, "session-refresh-failed (UPDATE timed out)")):
            self.setUp()
            tx, leg = self.confirmed("Supported: timer", "Session-Expires: 600;refresher=uas",
                                     "Allow: UPDATE")
            self.clock.advance(300)
            [update] = self.sent("UPDATE")
            if outcome is None:
                [(_, _, listener)] = self.transactions.sent
                listener.transactionTimedOut(None)
            else:
                self.answer(update, outcome)
            self.assertEqual(len(self.sent("BYE")), 1, outcome)
            self.assertEqual(self.handler.listener.events, [("terminated", reason)])
            self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_refreshRefusedOtherwise(self):
        """Another failure (491) keeps the session until its expiry, then BYE."""
        tx, leg = self.confirmed("Supported: timer", "Session-Expires: 600;refresher=uas",
                                 "Allow: UPDATE")
        self.clock.advance(300)
        self.answer(self.sent("UPDATE")[0], 491)
        self.assertEqual(self.sent("BYE"), [])
        self.clock.advance(268)
        self.assertEqual(len(self.sent("BYE")), 1)
        self.assertEqual(self.handler.listener.events, [("terminated", EXPIRED)])

    def test_422ToRefresh(self):
        """A 422 to our refresh: asked again once with its Min-SE."""
        tx, leg = self.confirmed("Supported: timer", "Session-Expires: 600;refresher=uas",
                                 "Allow: UPDATE")
        self.clock.advance(300)
        update = self.sent("UPDATE")[0]
        response = update.createResponse(422)
        response.headers.set("Min-SE", "900")
        [(_, _, listener)] = self.transactions.sent
        listener.responseReceived(response, None)
        again = self.sent("UPDATE")[-1]
        self.assertEqual(again.headers.get("Session-Expires"), "900;refresher=uac")
        self.assertEqual(again.headers.get("Min-SE"), "900")

    def test_byeStopsTimer(self):
        """The dialog's end stops the session timer."""
        tx, leg = self.confirmed("Supported: timer", "Session-Expires: 600")
        self.receive(request("BYE", toTag=leg.localTag, cseq=2, contact=None))
        [(_, bye, respond)] = self.handler.listener.events
        respond(200)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ClientLegTests(LegMixin, SynchronousTestCase):
    """Session timers on InviteClientLeg (we are the UAC of the dialog)."""

    def test_inviteHeaders(self):
        """Our INVITE asks for 1800 s with Min-SE 90 s."""
        self.leg()
        invite = self.transport.requests("INVITE")[-1]
        self.assertEqual(invite.headers.get("Session-Expires"), "1800")
        self.assertEqual(invite.headers.get("Min-SE"), "90")

    def test_422(self):
        """A 422 with a larger Min-SE: the INVITE goes again asking for it."""
        self.leg()
        self.respond(422, headers=[("Min-SE", "3600")])
        self.clock.advance(0)
        invite = self.transport.requests("INVITE")[-1]
        self.assertEqual(invite.headers.get("Session-Expires"), "3600")
        self.assertEqual(invite.headers.get("Min-SE"), "3600")
        self.respond(422, headers=[("Min-SE", "3600")])
        self.clock.advance(0)
        self.assertEqual(self.listener.names(), ["failed"])

    def test_weRefresh(self):
        """A 2xx naming us the refresher (uac): UPDATE at half the interval."""
        leg = self.leg()
        self.respond(200, body=CLIENT_SDP, headers=[
            ("Session-Expires", "120;refresher=uac"), ("Require", "timer"),
            ("Allow", "INVITE, ACK, BYE, UPDATE")])
        self.assertIsNotNone(leg.sessionTimer)
        self.clock.advance(59)
        self.assertEqual(self.transport.requests("UPDATE"), [])
        self.clock.advance(1)
        [update] = self.transport.requests("UPDATE")
        self.assertEqual(update.headers.get("Session-Expires"), "120;refresher=uac")

    def test_reinviteRefresh(self):
        """A peer without UPDATE: the refresh is a re-INVITE with our offer."""
        self.leg()
        self.respond(200, body=CLIENT_SDP, headers=[("Session-Expires", "120;refresher=uac")])
        self.clock.advance(60)
        reinvite = self.transport.requests("INVITE")[-1]
        self.assertEqual(reinvite.body, CLIENT_SDP)
        self.assertTrue(reinvite.toAddr.tag)

    def test_expiry(self):
        """A 2xx naming the far end the refresher, and no refresh: BYE, reason told."""
        self.leg()
        self.respond(200, body=CLIENT_SDP, headers=[("Session-Expires", "90;refresher=uas")])
        self.clock.advance(60)
        self.assertEqual(len(self.transport.requests("BYE")), 1)
        self.assertEqual(self.listener.events[-1], ("terminated", EXPIRED))

    def test_2xxBelowMinSE(self):
        """A 2xx granting less than our Min-SE: the interval stays at Min-SE."""
        leg = self.leg()
        self.respond(200, body=CLIENT_SDP, headers=[("Session-Expires", "1;refresher=uac"),
                                                    ("Allow", "UPDATE")])
        self.assertEqual(leg.sessionTimer.interval, 90)
        self.clock.advance(44)
        self.assertEqual(self.transport.requests("UPDATE"), [])

    def test_noSessionExpiresNoTimer(self):
        """A 2xx without Session-Expires: no session timer (RFC 4028 §7.2)."""
        leg = self.leg()
        self.respond(200, body=CLIENT_SDP)
        self.assertIsNone(leg.sessionTimer)

    def test_refreshByPeer(self):
        """The far end's UPDATE refreshes: Session-Expires in the 200."""
        leg = self.leg()
        self.respond(200, body=CLIENT_SDP, headers=[("Session-Expires", "90;refresher=uas")])
        self.clock.advance(50)
        self.farRequest("UPDATE", leg)
        [ok] = [r for r in self.transport.responses() if r.cseq.method == "UPDATE"]
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.headers.get("Session-Expires"), "90;refresher=uac")
        self.clock.advance(50)
        self.assertEqual(self.transport.requests("BYE"), [])


class TimeoutFailureTests(SynchronousTestCase):
    """L{sessiontimer.DialogSessionTimer} alone."""

    def test_sendFails(self):
        """A refresh that cannot be sent ends the session too."""
        from twisted.internet import defer
        from twisted.internet.task import Clock

        clock = Clock()
        ended = []
        timer = sessiontimer.DialogSessionTimer(
            clock, "uas", 100, "uas", SETTINGS,
            lambda *a, **k: defer.fail(TransactionTimeout("x")), ended.append, True)
        clock.advance(50)
        self.assertEqual(ended, ["session-refresh-failed (UPDATE timed out)"])
        self.assertEqual(clock.getDelayedCalls(), [])
        timer.stop()


class BusyTests(UserAgentMixin, SynchronousTestCase):
    """A refresh that cannot start now."""

    def test_reinviteInProgress(self):
        """
        A refresh re-INVITE while the call's own re-INVITE is pending is
        tried again a second later, not counted as a failure; its SDP is
        the last one the far end accepted.
        """
        tx, leg = self.invite(extra=("Content-Type: application/sdp", "Supported: timer",
                                     "Session-Expires: 600;refresher=uas"))
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.receive(request("ACK", toTag=leg.localTag, contact=None))
        self.clock.advance(299)
        held = SDP + b"a=sendonly\r\n"
        leg.sendRequest("INVITE", held, "application/sdp")
        self.clock.advance(1)
        self.assertEqual(len(self.transactions.sent), 1)
        self.assertEqual(self.handler.listener.names(), ["acknowledged"])
        hold, _, listener = self.transactions.sent[0]
        listener.responseReceived(hold.createResponse(200), None)
        self.clock.advance(1)
        [_, (refresh, _, _)] = self.transactions.sent
        self.assertEqual((refresh.method, refresh.body), ("INVITE", held))
        self.assertEqual(refresh.headers.get("Session-Expires"), "600;refresher=uac")
