"""
A client's C{call} to a registered SIP phone by name (L{linkrtc.call.contacts}):
the INVITE goes to the phone's contact through the flow its REGISTER came
by, without any trunk; the rest is the outbound topology.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.call.dialer import OutboundDialer
from linkrtc.call.passthrough import PassthroughMediaFactory
from linkrtc.call.test.test_outbound import OFFER, FakeClientLeg, OutgoingApplication
from linkrtc.sip.bindings import Binding, BindingTable, flowOf
from linkrtc.sip.transport import Address
from linkrtc.sip.uri import SIPURI, NameAddr, parseURI
from linkrtc.testing import CallHarness

PHONE = Address("UDP", "198.51.100.7", 40123)


class FakeUserAgent:
    """Our contact is sip:203.0.113.10:5060."""

    def localContact(self, source=None, secure=False):
        return NameAddr(SIPURI("sip", host="203.0.113.10", port=5060))


class ContactCallTests(SynchronousTestCase):
    def setUp(self):
        self.h = CallHarness(mediaFactory=PassthroughMediaFactory(),
                             application=OutgoingApplication())
        self.bindings = BindingTable(self.h.clock)
        self.legs = []

        def legFactory(**kwargs):
            leg = FakeClientLeg(**kwargs)
            self.legs.append(leg)
            return leg

        self.dialer = OutboundDialer(FakeUserAgent(), (), self.h.clock, legFactory=legFactory,
                                     bindings=self.bindings)
        self.h.manager.dialer = self.dialer
        self.alice = self.h.connect("alice")

    def bind(self, user="bob", uri="sip:bob@10.0.0.2:5062", source=PHONE, expires=600):
        self.bindings.bind(Binding(user=user, contact=NameAddr(parseURI(uri)), uriText=uri,
                                   flow=flowOf(source), callId="c", cseq=1,
                                   expiresAt=self.h.clock.seconds() + expires))

    def dial(self, to="bob"):
        self.h.manager.clientMessageReceived(
            self.alice, {"type": "call", "to": to, "sdp": OFFER, "ref": "r"})
        calling = self.alice.ofType("calling")
        return self.h.manager.calls.get(calling[-1]["call"]) if calling else None

    def test_callsContactThroughFlow(self):
        """
        With no trunk at all, a call to a registered user is placed: the
        Request-URI is the contact, the INVITE goes to the REGISTER's
        source, From names the calling client.
        """
        self.bind()
        call = self.dial()
        self.h.application.decide(call, {"action": "route", "trunk": None})
        [leg] = self.legs
        self.assertEqual(str(leg.kwargs["requestURI"]), "sip:bob@10.0.0.2:5062")
        self.assertEqual(leg.kwargs["proxy"], PHONE)
        self.assertEqual(str(leg.kwargs["fromAddr"].uri), "sip:alice@203.0.113.10:5060")
        self.assertEqual(str(leg.kwargs["toAddr"].uri), "sip:bob@203.0.113.10:5060")
        self.assertEqual(leg.kwargs["body"], OFFER.encode())
        self.assertIsNone(leg.kwargs["redirectCheck"]("sip:x@y"))
        self.assertEqual(leg.actions, ["start"])
        self.assertIs(call.contact.user, "bob")
        leg.answer()
        self.assertEqual(call.state.name, "confirmed")
        self.assertEqual(self.alice.ofType("answer")[-1]["call"], call.id)

    def test_mostRecentContact(self):
        """
        With two contacts both ring (linkrtc.call.contactfork); the most
        recent registration's INVITE is the first sent.
        """
        self.bind(uri="sip:bob@10.0.0.2")
        self.h.clock.advance(1)
        self.bind(uri="sip:bob@10.0.0.3")
        call = self.dial()
        self.h.application.decide(call, {"action": "route", "trunk": None})
        self.assertEqual([str(leg.kwargs["requestURI"]) for leg in self.legs],
                         ["sip:bob@10.0.0.3", "sip:bob@10.0.0.2"])

    def test_unregisteredNoTrunk(self):
        """A name nobody registered, with no trunk: error 503 as before."""
        self.assertIsNone(self.dial("nobody"))
        [error] = self.alice.ofType("error")
        self.assertEqual(error["code"], 503)

    def test_expired(self):
        """Once the binding expired, the name is no longer callable."""
        self.bind(expires=60)
        self.h.clock.advance(61)
        self.assertIsNone(self.dial())
        self.assertEqual(self.alice.ofType("error")[0]["code"], 503)

    def test_phoneRefuses(self):
        """The phone's 486 ends the call with that cause."""
        self.bind()
        call = self.dial()
        self.h.application.decide(call, {"action": "route", "trunk": None})
        self.legs[0].fail(486, "Busy Here")
        self.assertEqual(call.state.name, "dropped")
