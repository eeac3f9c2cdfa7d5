"""
RFC 4475 and RFC 5118 torture messages through L{parseMessage} and
L{StreamFramer}, with the parser-level verdicts of
C{messages/rfc4475/INDEX.md} and C{messages/rfc5118/INDEX.md}.

Verdicts that belong to the user-agent core (501, 415, 416, 420, 406,
483/200, 401) are not the parser's: those messages must simply parse.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import SIPFramingError, SIPParseError
from linkrtc.sip.message import Request, Response
from linkrtc.sip.parser import StreamFramer, parseMessage
from linkrtc.sip.uri import SIPURI, AbsoluteURI

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "messages")

# RFC 4475: messages a parser must accept (§3.1.1, and those of §3.3/§3.4 whose
# verdict is the user-agent core's).
VALID_4475 = [
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq", "semiuri",
    "transports", "mpart01", "unreason", "noreason", "inv2543", "cparam01", "cparam02",
    "regescrt", "unksm2", "unkscm", "novelsc", "invut", "bext01", "regaut01", "zeromf", "sdp01",
    "bcast", "mismatch02",
]
# Must be refused with 400.
INVALID_4475 = [
    "badinv01", "clerr", "ncl", "scalar02", "quotbal", "ltgtruri", "lwsruri", "escruri",
    "regbadct", "badaspec", "baddn", "mismatch01", "insuf", "multi01", "mcl01",
]
# Either is fine; must not crash.
TOLERATE_4475 = ["lwsstart", "trws", "baddate", "badbranch", "test"]
# Responses with overlarge values: refused (and so dropped).
DROPPED_4475 = ["scalarlg", "bigcode"]

VALID_5118 = [
    "ipv6-good", "port-ambiguous", "port-unambiguous", "via-received-param-with-delim",
    "via-received-param-no-delim", "mult-ip-in-header", "ipv6-correct-abnf-2-colons",
    "derived/ipv6-in-sdp.cl-fixed", "derived/mult-ip-in-sdp.cl-fixed",
    "derived/ipv4-mapped-ipv6.cl-fixed",
]
INVALID_5118 = ["ipv6-bad", "ipv6-bug-abnf-3-colons"]


def load(rfc, name):
    with open(os.path.join(HERE, rfc, name + ".sip"), "rb") as f:
        return f.read()


class CoverageTests(SynchronousTestCase):
    """Every message file has a verdict here."""

    def test_all4475(self):
        names = {f[:-4] for f in os.listdir(os.path.join(HERE, "rfc4475")) if f.endswith(".sip")}
        listed = VALID_4475 + INVALID_4475 + TOLERATE_4475 + DROPPED_4475 + ["badvers"]
        self.assertEqual(sorted(names), sorted(listed))
        self.assertEqual(len(names), 50)

    def test_all5118(self):
        names = {f[:-4] for f in os.listdir(os.path.join(HERE, "rfc5118")) if f.endswith(".sip")}
        listed = {n for n in VALID_5118 + INVALID_5118 if "/" not in n}
        listed |= {"ipv6-in-sdp", "mult-ip-in-sdp", "ipv4-mapped-ipv6"}
        self.assertEqual(names, listed)


class RFC4475Tests(SynchronousTestCase):
    """
    RFC 4475 verdicts at the parser.
    """

    def parse(self, name):
        return parseMessage(load("rfc4475", name))

    def test_valid(self):
        for name in VALID_4475:
            msg = self.parse(name)
            # Every accessor works on a valid message.
            msg.vias, msg.topVia, msg.callId, msg.cseq, msg.fromAddr, msg.toAddr
            msg.contacts, msg.maxForwards, msg.contentType
            if isinstance(msg, Request):
                msg.uri
            # Round trip.
            again = parseMessage(msg.toBytes())
            self.assertEqual(again, msg, name)

    def test_invalid(self):
        for name in INVALID_4475:
            e = self.assertRaises(SIPParseError, self.parse, name)
            self.assertEqual(e.status, 400, name)
            self.assertTrue(e.reason.startswith("Bad Request ("), e.reason)
            self.assertIs(e.isRequest, True)
            self.assertTrue(e.headers, name)

    def test_invalidReasons(self):
        """Each fault is named."""
        expected = {
            "clerr": "Content-Length larger than message",
            "ncl": "Negative Content-Length",
            "mcl01": "Conflicting Content-Length",
            "scalar02": "CSeq",
            "quotbal": "quoted string",
            "mismatch01": "CSeq method",
            "insuf": "Missing",
            "multi01": "More than one",
            "escruri": "Headers in Request-URI",
        }
        for name, words in expected.items():
            e = self.assertRaises(SIPParseError, self.parse, name)
            self.assertIn(words, e.reason)

    def test_badvers(self):
        e = self.assertRaises(SIPParseError, self.parse, "badvers")
        self.assertEqual(e.status, 505)
        self.assertIs(e.isRequest, True)
        names = [n for n, _ in e.headers]
        for name in ["Via", "From", "To", "Call-ID", "CSeq"]:
            self.assertIn(name, names)

    def test_tolerated(self):
        for name in TOLERATE_4475:
            try:
                msg = self.parse(name)
            except SIPParseError as e:
                self.assertEqual(e.status, 400, name)
            else:
                parseMessage(msg.toBytes())

    def test_tolerantRequestLine(self):
        """Extra SP in the request line is tolerated and not sent on."""
        for name in ["lwsstart", "trws"]:
            msg = self.parse(name)
            self.assertNotIn(b"  ", msg.toBytes().split(b"\r\n")[0])
            self.assertNotIn(b" \r\n", msg.toBytes().split(b"\r\n\r\n")[0] + b"\r\n")

    def test_badbranch(self):
        self.assertEqual(self.parse("badbranch").topVia.branch, "z9hG4bK")

    def test_dropped(self):
        for name in DROPPED_4475:
            e = self.assertRaises(SIPParseError, self.parse, name)
            self.assertIs(e.isRequest, False)

    def test_wsinv(self):
        msg = self.parse("wsinv")
        self.assertEqual(msg.toAddr.tag, "1918181833n")
        self.assertEqual(msg.fromAddr.tag, "98asjd8")
        self.assertEqual(msg.fromAddr.display, 'J Rosenberg \\"')
        self.assertEqual(msg.maxForwards, 68)
        self.assertEqual((msg.cseq.number, msg.cseq.method), (9, "INVITE"))
        self.assertEqual([(v.transport, v.host, v.branch) for v in msg.vias],
                         [("UDP", "192.0.2.2", "390skdjuw"),
                          ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
                          ("UDP", "192.168.255.111", "z9hG4bK30239")])
        self.assertEqual(msg.headers.get("Subject"), "")
        self.assertEqual(msg.headers.get("UnknownHeaderWithUnusualValue"), ";;,,;;,;")
        self.assertEqual(msg.headers.get("NewFangledHeader"),
                         "newfangled value continued newfangled value")
        [contact] = msg.contacts
        self.assertEqual(contact.display, 'Quoted string ""')
        self.assertEqual(contact.params, {"newparam": "newvalue", "secondparam": None, "q": "0.33"})
        self.assertEqual(len(msg.body), 150)
        self.assertEqual(msg.routes[0].uri.params["unknownwith"], "value")

    def test_intmeth(self):
        msg = self.parse("intmeth")
        self.assertEqual(msg.method, "!interesting-Method0123456789_*+`.%indeed'~")
        self.assertEqual(msg.uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        self.assertEqual(msg.toAddr.display, "BEL:\x07 NUL:\x00 DEL:\x7f")
        self.assertEqual(msg.fromAddr.tag, "_token~1'+`*%!-.")
        self.assertEqual(msg.callId, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
        self.assertIn("extensionHeader-!.%*+_`'~", msg.headers)

    def test_esc01(self):
        msg = self.parse("esc01")
        self.assertEqual(msg.uri.user, "sips:user@example.com")
        self.assertEqual(msg.toAddr.uri.user, "user")
        self.assertEqual(msg.fromAddr.uri.user, "I have spaces")
        [contact] = msg.contacts
        self.assertEqual(contact.uri.user, "caller")
        self.assertEqual(contact.uri.params, {"lr": None, "name": "value%41"})

    def test_escnull(self):
        msg = self.parse("escnull")
        self.assertEqual(msg.toAddr.uri.user, "null-\x00-null")
        self.assertIn("%00", str(msg.toAddr.uri))
        users = [c.uri.user for c in msg.contacts]
        self.assertEqual(users, ["\x00", "\x00\x00"])
        self.assertNotEqual(msg.contacts[0].uri, msg.contacts[1].uri)

    def test_esc02(self):
        msg = self.parse("esc02")
        self.assertEqual(msg.method, "RE%47IST%45R")
        self.assertEqual(len(msg.contacts), 2)
        self.assertEqual(msg.headers.get("C%6Fntact"), "<sip:alias2@host2.example.com>")
        self.assertEqual(msg.topVia.branch, "z9hG4bK209%fzsnel234")
        self.assertEqual(msg.toAddr.display, "%Z%45")

    def test_lwsdisp(self):
        self.assertEqual(self.parse("lwsdisp").fromAddr.display, "caller")

    def test_longreq(self):
        msg = self.parse("longreq")
        self.assertGreater(len(msg.vias), 10)
        self.assertGreater(len(msg.fromAddr.tag), 100)

    def test_dblreq(self):
        msg = self.parse("dblreq")
        self.assertEqual(msg.method, "REGISTER")
        self.assertEqual(msg.body, b"")
        self.assertNotIn(b"INVITE", msg.toBytes())

    def test_semiuri(self):
        msg = self.parse("semiuri")
        self.assertEqual(msg.uri.user, "user;par=u@example.net")
        self.assertEqual(msg.uri.host, "example.com")
        self.assertEqual(len(msg.headers.getAll("Accept")), 6)

    def test_transports(self):
        self.assertEqual([v.transport for v in self.parse("transports").vias],
                         ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"])

    def test_mpart01(self):
        data = load("rfc4475", "mpart01")
        msg = parseMessage(data)
        self.assertEqual(len(msg.body), int(msg.headers.get("Content-Length")))
        self.assertIn(b"\x00", msg.body)
        self.assertTrue(data.endswith(msg.body))

    def test_responses(self):
        msg = self.parse("noreason")
        self.assertIsInstance(msg, Response)
        self.assertEqual((msg.status, msg.reason), (100, ""))
        msg = self.parse("unreason")
        self.assertEqual(msg.status, 200)
        self.assertTrue(msg.reason.startswith("= 2**3 * 5**2 "))
        self.assertEqual(parseMessage(msg.toBytes()).reason, msg.reason)

    def test_inv2543(self):
        msg = self.parse("inv2543")
        self.assertIsNone(msg.topVia.branch)
        self.assertIsNone(msg.fromAddr.tag)
        self.assertIsNone(msg.maxForwards)
        self.assertTrue(msg.body.startswith(b"v=0"))

    def test_contactParams(self):
        [c] = self.parse("cparam01").contacts
        self.assertEqual(c.params, {"unknownparam": None})
        self.assertEqual(c.uri.params, {})
        [c] = self.parse("cparam02").contacts
        self.assertEqual(c.params, {})
        self.assertEqual(c.uri.params, {"unknownparam": None})
        [c] = self.parse("regescrt").contacts
        self.assertEqual(c.uri.headers, {"Route": "<sip:sip.example.com>"})

    def test_schemes(self):
        self.assertIsInstance(self.parse("unkscm").uri, AbsoluteURI)
        self.assertEqual(self.parse("novelsc").uri.scheme, "soap.beep")
        msg = self.parse("unksm2")
        self.assertEqual(str(msg.toAddr.uri), "isbn:2983792873")
        self.assertEqual(msg.fromAddr.uri.scheme, "http")
        self.assertEqual(str(msg.contacts[0].uri), "name:John_Smith")

    def test_semantic(self):
        self.assertEqual(self.parse("zeromf").maxForwards, 0)
        self.assertIn("Proxy-Require", self.parse("bext01").headers)
        self.assertEqual(self.parse("invut").contentType, "application/unknownformat")
        self.assertEqual(self.parse("bcast").vias[1].host, "255.255.255.255")
        self.assertEqual(self.parse("mismatch02").method, "NEWMETHOD")


class RFC5118Tests(SynchronousTestCase):
    """
    RFC 5118 (IPv6) verdicts at the parser.
    """

    def parse(self, name):
        return parseMessage(load("rfc5118", name))

    def test_valid(self):
        for name in VALID_5118:
            msg = self.parse(name)
            msg.vias, msg.fromAddr, msg.toAddr, msg.contacts, msg.uri
            self.assertEqual(parseMessage(msg.toBytes()), msg, name)

    def test_invalid(self):
        for name in INVALID_5118:
            e = self.assertRaises(SIPParseError, self.parse, name)
            self.assertEqual(e.status, 400)

    def test_portAmbiguous(self):
        uri = self.parse("port-ambiguous").uri
        self.assertEqual((uri.host, uri.port), ("[2001:db8::10:5070]", None))

    def test_portUnambiguous(self):
        uri = self.parse("port-unambiguous").uri
        self.assertEqual((uri.host, uri.port), ("[2001:db8::10]", 5070))

    def test_received(self):
        self.assertEqual(self.parse("via-received-param-with-delim").topVia.received,
                         "[2001:db8::9:255]")
        self.assertEqual(self.parse("via-received-param-no-delim").topVia.received,
                         "2001:db8::9:255")

    def test_multipleAddresses(self):
        msg = self.parse("mult-ip-in-header")
        self.assertEqual([(v.host, v.port) for v in msg.vias],
                         [("[2001:db8::9:1]", 6050), ("192.0.2.1", None),
                          ("[2001:db8::9:255]", None)])

    def test_ipv4Mapped(self):
        msg = self.parse("derived/ipv4-mapped-ipv6.cl-fixed")
        self.assertIsInstance(msg.uri, SIPURI)
        self.assertIn(b"::ffff:", msg.body)

    def test_originalLengthCutsSDP(self):
        """The RFC's LF-counted Content-Length takes only part of the CRLF body."""
        for name in ["ipv6-in-sdp", "mult-ip-in-sdp", "ipv4-mapped-ipv6"]:
            msg = self.parse(name)
            fixed = self.parse("derived/%s.cl-fixed" % (name,))
            self.assertLess(len(msg.body), len(fixed.body))


class StreamVerdictTests(SynchronousTestCase):
    """
    RFC 4475 §3.1.2.2, §3.1.2.3, §3.3.9, §3.1.1.8 on a stream.
    """

    def test_clerrWaits(self):
        """Content-Length larger than the data: wait for more."""
        framer = StreamFramer()
        self.assertEqual(framer.feed(load("rfc4475", "clerr")), [])

    def test_nclCloses(self):
        self.assertRaises(SIPFramingError, StreamFramer().feed, load("rfc4475", "ncl"))

    def test_mcl01Closes(self):
        e = self.assertRaises(SIPFramingError, StreamFramer().feed, load("rfc4475", "mcl01"))
        self.assertIn("Conflicting", e.reason)

    def test_dblreqTwoMessages(self):
        """
        On a stream the trailing octets are a second message; its body is
        shorter than its Content-Length says, so what is left is garbage that
        breaks the framing. The two messages come with the error.
        """
        data = load("rfc4475", "dblreq")
        e = self.assertRaises(SIPFramingError, StreamFramer().feed, data)
        self.assertIn("Missing Content-Length", e.reason)
        out = e.messages
        self.assertEqual(len(out), 2)
        self.assertEqual(parseMessage(out[0]).method, "REGISTER")
        self.assertEqual(parseMessage(out[1]).method, "INVITE")
        self.assertTrue(data.replace(b"\r\n\r\n\r\nINVITE", b"\r\n\r\nINVITE").startswith(
            b"".join(out)))

    def test_validThroughStream(self):
        """Valid messages with a Content-Length frame back to themselves."""
        for name in VALID_4475:
            if name in ("inv2543", "dblreq"):
                continue
            data = load("rfc4475", name)
            framer = StreamFramer()
            out = []
            for i in range(0, len(data), 7):
                out.extend(framer.feed(data[i : i + 7]))
            self.assertEqual(len(out), 1, name)
            self.assertEqual(parseMessage(out[0]), parseMessage(data), name)
