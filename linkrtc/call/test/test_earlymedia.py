"""
Tests of early media towards SIP callers in the call engine: with a
media session that has early media (L{IEarlyMediaSession}, bridge mode)
the ringing call sends 183 Session Progress with its SDP, and the 200 OK
carries the same SDP.
"""

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from linkrtc.error import MediaError
from linkrtc.interfaces import IEarlyMediaSession
from linkrtc.testing import CallHarness, FakeMediaFactory, FakeMediaSession

EARLY = b"v=0\r\no=linkrtc 1 0 IN IP4 192.0.2.1\r\nm=audio 20000 RTP/AVP 0\r\n"


@implementer(IEarlyMediaSession)
class EarlyMediaSession(FakeMediaSession):
    """A fake session whose SIP answer is made early (as the bridge's is)."""

    early = EARLY
    failure = None

    def earlyAnswer(self):
        self.calls.append(("earlyAnswer", None))
        if self.failure is not None:
            raise self.failure
        return self.early

    def sipAnswer(self, clientSdp):
        self.calls.append(("sipAnswer", clientSdp))
        return defer.succeed(self.early or clientSdp.encode())


class EarlyMediaFactory(FakeMediaFactory):
    def __init__(self, early=EARLY, failure=None):
        super().__init__()
        self.early = early
        self.failure = failure

    def newSession(self, callId, listener):
        session = EarlyMediaSession(callId, listener)
        session.early = self.early
        session.failure = self.failure
        self.sessions[callId] = session
        return session


class EarlyMediaTests(SynchronousTestCase):
    def ring(self, factory):
        self.h = CallHarness(mediaFactory=factory)
        alice = self.h.connect("alice")
        call, leg = self.h.invite(to="sip:alice@example.com")
        self.h.route(call, "alice")
        self.h.clientSays(alice, "ringing", call)
        return call, leg, alice

    def test_183ThenSameSdpIn200(self):
        """Ringing: one 183 with the early SDP (no 180); accept: the 200 OK has the same SDP."""
        call, leg, alice = self.ring(EarlyMediaFactory())
        verifyObject(IEarlyMediaSession, call.media)
        self.h.clientSays(alice, "ringing", call)
        [p] = leg.provisionals
        self.assertEqual((p.status, p.body, p.contentType), (183, EARLY, "application/sdp"))
        self.h.clientSays(alice, "accept", call, sdp="v=0\r\nclient\r\n")
        [final] = leg.finals
        self.assertEqual((final.status, final.body), (200, EARLY))
        self.assertEqual(call.state.name, "confirmed")

    def test_noEarlyMedia(self):
        """A session without early media for this call (C{None}): 180 as before."""
        call, leg, alice = self.ring(EarlyMediaFactory(early=None))
        self.assertEqual([(p.status, p.body) for p in leg.provisionals], [(180, None)])

    def test_earlyMediaFails(self):
        """Early media that cannot be made (no RTP port): 180, and the call goes on."""
        call, leg, alice = self.ring(EarlyMediaFactory(failure=MediaError("no port")))
        self.assertEqual([p.status for p in leg.provisionals], [180])
        self.assertEqual(call.state.name, "ringing")
