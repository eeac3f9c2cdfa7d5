"""Tests for L{linkrtc.call.passthrough}."""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from linkrtc.call.passthrough import PassthroughMediaFactory, isHold
from linkrtc.error import MediaError
from linkrtc.interfaces import IMediaFactory, IMediaSession, IOutboundMediaSession
from linkrtc.testing import CLIENT_ANSWER, SIP_OFFER


class PassthroughTests(SynchronousTestCase):
    def setUp(self):
        self.factory = PassthroughMediaFactory()
        self.session = self.factory.newSession("c1", None)

    def test_interfaces(self):
        """The factory and its sessions provide their interfaces; the name is passthrough."""
        verifyObject(IMediaFactory, self.factory)
        verifyObject(IMediaSession, self.session)
        verifyObject(IOutboundMediaSession, self.session)
        self.assertEqual(self.factory.name, "passthrough")

    def test_outbound(self):
        """
        Outbound: the client's offer goes to SIP as bytes (minus codecs the
        trunk leaves out) and is what a re-INVITE gets; the SIP answer goes
        to the client as text; hold does nothing.
        """
        offer = SIP_OFFER.decode()
        self.assertEqual(self.successResultOf(self.session.sipOffer(offer)), SIP_OFFER)
        self.assertEqual(self.session.answer, SIP_OFFER)
        filtered = self.successResultOf(self.session.sipOffer(offer, ["PCMU"]))
        self.assertNotIn(b"telephone-event", filtered)
        self.assertEqual(self.successResultOf(self.session.clientAnswer(SIP_OFFER)), offer)
        self.assertIsNone(self.successResultOf(self.session.hold(True)))
        self.failureResultOf(self.session.sipOffer(offer, ["G729"]), MediaError)
        self.failureResultOf(self.session.sipOffer("garbage"), MediaError)
        self.failureResultOf(self.session.clientAnswer(b"\xff"), MediaError)

    def test_offerAsIs(self):
        """The SIP offer goes to the client as is (text)."""
        self.assertEqual(self.successResultOf(self.session.clientOffer(SIP_OFFER)),
                         SIP_OFFER.decode())

    def test_offerless(self):
        """An offerless INVITE: no offer for the client."""
        self.assertIsNone(self.successResultOf(self.session.clientOffer(None)))

    def test_answerAsIs(self):
        """The client's answer goes to SIP as is (bytes)."""
        self.assertEqual(self.successResultOf(self.session.sipAnswer(CLIENT_ANSWER)),
                         CLIENT_ANSWER.encode())

    def test_notSdp(self):
        """Something that is not SDP fails with MediaError."""
        self.failureResultOf(self.session.sipAnswer("hello"), MediaError)
        self.failureResultOf(self.session.clientOffer(b"\xff\xfe"), MediaError)

    def test_ackBody(self):
        """The ACK's SDP goes to the client as text."""
        self.assertEqual(self.successResultOf(self.session.sipAckBody(SIP_OFFER)),
                         SIP_OFFER.decode())

    def test_reoffer(self):
        """A re-INVITE is answered with the last answer; sendonly means hold."""
        self.successResultOf(self.session.sipAnswer(CLIENT_ANSWER))
        held = SIP_OFFER.replace(b"a=sendrecv", b"a=sendonly")
        self.assertEqual(self.successResultOf(self.session.sipReoffer(held)),
                         (CLIENT_ANSWER.encode(), True))
        self.assertEqual(self.successResultOf(self.session.sipReoffer(SIP_OFFER)),
                         (CLIENT_ANSWER.encode(), False))

    def test_reofferBeforeAnswer(self):
        """A re-offer with no previous answer fails."""
        self.failureResultOf(self.session.sipReoffer(SIP_OFFER), MediaError)

    def test_isHold(self):
        """inactive and c=0.0.0.0 are hold too."""
        self.assertTrue(isHold("v=0\r\na=inactive\r\n"))
        self.assertTrue(isHold("v=0\r\nc=IN IP4 0.0.0.0\r\n"))
        self.assertFalse(isHold(SIP_OFFER.decode()))

    def test_statsAndClose(self):
        """stats names the mode; close fires."""
        self.assertEqual(self.session.stats(), {"mode": "passthrough"})
        self.successResultOf(self.session.close())
        self.successResultOf(self.session.sendDigits("1"))
