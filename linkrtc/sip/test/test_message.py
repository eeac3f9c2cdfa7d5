"""
Tests for L{linkrtc.sip.message}: headers, requests, responses (RFC 3261 §7,
§8.2.6, §20).
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import SIPParseError
from linkrtc.sip.message import (
    CSeq,
    Headers,
    Request,
    Response,
    canonicalName,
    isRequest,
    isResponse,
    parseCSeq,
    parseMaxForwards,
)
from linkrtc.sip.parser import parseMessage
from linkrtc.sip.uri import SIPURI, WILDCARD, Via, parseURI


def makeInvite(**extra):
    headers = Headers([
        ("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"),
        ("Via", "SIP/2.0/TCP proxy.example.com:5061;branch=z9hG4bKnashds8, "
                "SIP/2.0/UDP p2.example.com;branch=z9hG4bK2"),
        ("Max-Forwards", "70"),
        ("To", "Bob <sip:bob@biloxi.example.com>"),
        ("From", "Alice <sip:alice@atlanta.example.com>;tag=1928301774"),
        ("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com"),
        ("CSeq", "314159 INVITE"),
        ("Contact", "<sip:alice@pc33.atlanta.example.com>"),
        ("Timestamp", "54"),
        ("Content-Type", "application/sdp; charset=utf-8"),
    ])
    for name, value in extra.items():
        headers.add(name, value)
    return Request("INVITE", "sip:bob@biloxi.example.com", headers, b"v=0\r\n")


class CanonicalNameTests(SynchronousTestCase):
    """
    L{canonicalName} expands compact forms and normalises known names.
    """

    def test_compact(self):
        for short, name in [("v", "Via"), ("f", "From"), ("t", "To"), ("i", "Call-ID"),
                            ("m", "Contact"), ("l", "Content-Length"), ("c", "Content-Type"),
                            ("e", "Content-Encoding"), ("s", "Subject"), ("k", "Supported"),
                            ("o", "Event"), ("u", "Allow-Events"), ("r", "Refer-To"),
                            ("a", "Accept-Contact"), ("b", "Referred-By"), ("x", "Session-Expires")]:
            self.assertEqual(canonicalName(short), (name.lower(), name))
            self.assertEqual(canonicalName(short.upper())[1], name)

    def test_known(self):
        self.assertEqual(canonicalName("cseq"), ("cseq", "CSeq"))
        self.assertEqual(canonicalName("MaX-fOrWaRdS"), ("max-forwards", "Max-Forwards"))
        self.assertEqual(canonicalName("call-id"), ("call-id", "Call-ID"))
        self.assertEqual(canonicalName("www-authenticate")[1], "WWW-Authenticate")
        self.assertEqual(canonicalName("Content-Length   "), ("content-length", "Content-Length"))

    def test_unknown(self):
        self.assertEqual(canonicalName("X-Foo"), ("x-foo", "X-Foo"))
        self.assertEqual(canonicalName("C%6Fntact"), ("c%6fntact", "C%6Fntact"))


class HeadersTests(SynchronousTestCase):
    """
    L{Headers} is an ordered case-insensitive multimap.
    """

    def test_getCaseInsensitive(self):
        h = Headers([("via", "a"), ("From", "b")])
        self.assertEqual(h.get("VIA"), "a")
        self.assertEqual(h.get("v"), "a")
        self.assertEqual(h.get("f"), "b")
        self.assertIsNone(h.get("To"))
        self.assertEqual(h.get("To", "x"), "x")
        self.assertIn("Via", h)
        self.assertIn("v", h)
        self.assertNotIn("To", h)

    def test_itemsCanonical(self):
        h = Headers([("v", "a"), ("x-custom", "1"), ("CALL-ID", "c")])
        self.assertEqual(h.items(), [("Via", "a"), ("x-custom", "1"), ("Call-ID", "c")])
        self.assertEqual(len(h), 3)
        self.assertEqual(list(h), h.items())

    def test_mapping(self):
        h = Headers({"To": "a", "From": "b"})
        self.assertEqual(h.items(), [("To", "a"), ("From", "b")])

    def test_getAllSplitsLists(self):
        h = Headers([("Via", "a, b"), ("Via", "c"), ("Allow", "INVITE,ACK , BYE"),
                     ("Contact", '"A, B" <sip:a@b>, <sip:c@d>'), ("Subject", "x, y"),
                     ("Contact", "*")])
        self.assertEqual(h.getAll("via"), ["a", "b", "c"])
        self.assertEqual(h.getAll("Allow"), ["INVITE", "ACK", "BYE"])
        self.assertEqual(h.getAll("Contact"), ['"A, B" <sip:a@b>', "<sip:c@d>", "*"])
        self.assertEqual(h.getAll("Subject"), ["x, y"])
        self.assertEqual(h.getAll("Nope"), [])
        self.assertEqual(h.getLines("Via"), ["a, b", "c"])
        self.assertEqual(h.count("via"), 2)

    def test_getAllNotSplitForAuth(self):
        value = 'Digest realm="a", nonce="b"'
        h = Headers([("WWW-Authenticate", value)])
        self.assertEqual(h.getAll("WWW-Authenticate"), [value])

    def test_set(self):
        h = Headers([("XA", "1"), ("XB", "2"), ("xa", "3"), ("XC", "4")])
        h.set("xa", "x")
        self.assertEqual(h.items(), [("xa", "x"), ("XB", "2"), ("XC", "4")])
        h.set("XD", 5)
        self.assertEqual(h.items()[-1], ("XD", "5"))
        h.set("XB", ["p", "q"])
        self.assertEqual(h.items(),
                         [("xa", "x"), ("XB", "p"), ("XB", "q"), ("XC", "4"), ("XD", "5")])

    def test_addRemove(self):
        h = Headers()
        h.add("Route", "<sip:a>")
        h.add("route", "<sip:b>")
        h.addFirst("Via", "v1")
        self.assertEqual(h.items(), [("Via", "v1"), ("Route", "<sip:a>"), ("Route", "<sip:b>")])
        h.remove("ROUTE")
        self.assertEqual(h.items(), [("Via", "v1")])
        h.remove("Nothing")

    def test_copy(self):
        h = Headers([("XA", "1")])
        c = h.copy()
        c.add("XB", "2")
        self.assertEqual(h.items(), [("XA", "1")])
        self.assertEqual(c.items(), [("XA", "1"), ("XB", "2")])

    def test_equality(self):
        self.assertEqual(Headers([("v", "a")]), Headers([("Via", "a")]))
        self.assertNotEqual(Headers([("v", "a")]), Headers([("Via", "b")]))


class ScalarTests(SynchronousTestCase):
    """
    CSeq and Max-Forwards parsing and ranges (RFC 3261 §20.16, §20.22).
    """

    def test_cseq(self):
        self.assertEqual(parseCSeq("0009\r\n  INVITE".replace("\r\n", "")), CSeq(9, "INVITE"))
        self.assertEqual(parseCSeq("4294967295 BYE"), CSeq(4294967295, "BYE"))
        for bad in ["", "1", "x INVITE", "1 INVITE x", "-1 INVITE", "4294967296 INVITE",
                    "36893488147419103232 REGISTER", "1 IN;VITE", "\u0661 INVITE"]:
            self.assertRaises(SIPParseError, parseCSeq, bad)

    def test_maxForwards(self):
        self.assertEqual(parseMaxForwards("0068"), 68)
        self.assertEqual(parseMaxForwards("255"), 255)
        self.assertEqual(parseMaxForwards("0"), 0)
        self.assertEqual(parseMaxForwards("0000000070"), 70)
        for bad in ["256", "300", "", "x", "-1", "99999999999999999999"]:
            self.assertRaises(SIPParseError, parseMaxForwards, bad)


class RequestTests(SynchronousTestCase):
    """
    L{Request}: accessors, serialisation, L{Request.createResponse}.
    """

    def test_attributes(self):
        r = makeInvite()
        self.assertEqual(r.method, "INVITE")
        self.assertIsInstance(r.uri, SIPURI)
        self.assertEqual(r.uri, parseURI("sip:bob@biloxi.example.com"))
        self.assertEqual(r.version, "SIP/2.0")
        self.assertEqual(r.body, b"v=0\r\n")
        self.assertTrue(isRequest(r))
        self.assertFalse(isResponse(r))

    def test_uriObject(self):
        uri = parseURI("sip:x@y")
        r = Request("OPTIONS", uri)
        self.assertIs(r.uri, uri)

    def test_accessors(self):
        r = makeInvite()
        self.assertEqual([v.host for v in r.vias],
                         ["pc33.atlanta.example.com", "proxy.example.com", "p2.example.com"])
        self.assertEqual(r.topVia.branch, "z9hG4bK776asdhds")
        self.assertEqual(r.callId, "a84b4c76e66710@pc33.atlanta.example.com")
        self.assertEqual(r.cseq, CSeq(314159, "INVITE"))
        self.assertEqual(r.cseq.number, 314159)
        self.assertEqual(r.fromAddr.tag, "1928301774")
        self.assertEqual(r.fromAddr.display, "Alice")
        self.assertIsNone(r.toAddr.tag)
        self.assertEqual(r.toAddr.uri.user, "bob")
        self.assertEqual([str(c.uri) for c in r.contacts], ["sip:alice@pc33.atlanta.example.com"])
        self.assertEqual(r.maxForwards, 70)
        self.assertEqual(r.contentType, "application/sdp")
        self.assertEqual(r.routes, [])
        self.assertEqual(r.recordRoutes, [])

    def test_accessorsAbsent(self):
        r = Request("OPTIONS", "sip:a@b")
        self.assertIsNone(r.topVia)
        self.assertEqual(r.vias, [])
        self.assertEqual(r.contacts, [])
        self.assertIsNone(r.maxForwards)
        self.assertIsNone(r.contentType)
        for name in ["callId", "cseq", "fromAddr", "toAddr"]:
            self.assertRaises(SIPParseError, getattr, r, name)

    def test_accessorErrors(self):
        r = Request("OPTIONS", "sip:a@b", [("Via", "SIP/2.0/UDP h;;"), ("CSeq", "x OPTIONS"),
                                           ("From", "<sip:a@b"), ("Max-Forwards", "300"),
                                           ("Call-ID", "a"), ("Call-ID", "b"), ("Contact", "x y")])
        for name in ["vias", "topVia", "cseq", "fromAddr", "maxForwards", "callId", "contacts"]:
            e = self.assertRaises(SIPParseError, getattr, r, name)
            self.assertEqual(e.status, 400)

    def test_cacheInvalidated(self):
        r = makeInvite()
        self.assertEqual(r.topVia.branch, "z9hG4bK776asdhds")
        self.assertIs(r.topVia, r.topVia)
        r.headers.addFirst("Via", "SIP/2.0/UDP me.example.com;branch=z9hG4bKnew")
        self.assertEqual(r.topVia.branch, "z9hG4bKnew")
        self.assertEqual(len(r.vias), 4)
        r.headers.set("CSeq", "2 INVITE")
        self.assertEqual(r.cseq, CSeq(2, "INVITE"))
        r.headers = Headers([("Call-ID", "zz")])
        self.assertEqual(r.callId, "zz")

    def test_setVias(self):
        r = makeInvite()
        vias = r.vias
        vias[0].received = "192.0.2.1"
        r.setVias(vias)
        self.assertEqual(r.headers.getLines("Via")[0],
                         "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;"
                         "received=192.0.2.1")
        self.assertEqual(r.topVia.received, "192.0.2.1")
        self.assertEqual(len(r.vias), 3)

    def test_wildcardContact(self):
        r = Request("REGISTER", "sip:example.com", [("Contact", "*")])
        self.assertEqual(r.contacts, [WILDCARD])

    def test_toBytes(self):
        r = Request("OPTIONS", "sip:bob@example.com", [
            ("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("l", "99"), ("To", "<sip:bob@example.com>")],
            b"hello")
        self.assertEqual(
            r.toBytes(),
            b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
            b"Content-Length: 5\r\n"
            b"To: <sip:bob@example.com>\r\n"
            b"\r\n"
            b"hello")
        self.assertEqual(bytes(r), r.toBytes())

    def test_toBytesAddsContentLength(self):
        r = Request("ACK", "sip:a@b")
        self.assertEqual(r.toBytes(), b"ACK sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n")

    def test_toBytesDuplicateContentLength(self):
        r = Request("ACK", "sip:a@b", [("Content-Length", "1"), ("XY", "y"), ("l", "2")])
        self.assertEqual(r.toBytes(), b"ACK sip:a@b SIP/2.0\r\nContent-Length: 0\r\nXY: y\r\n\r\n")

    def test_strBody(self):
        self.assertEqual(Request("MESSAGE", "sip:a@b", body="\u00e9").body, b"\xc3\xa9")

    def test_uriChangeSerialised(self):
        r = makeInvite()
        r.uri = "sip:carol@chicago.example.com;transport=tcp"
        self.assertTrue(r.toBytes().startswith(
            b"INVITE sip:carol@chicago.example.com;transport=tcp SIP/2.0\r\n"))

    def test_roundTrip(self):
        r = makeInvite()
        again = parseMessage(r.toBytes())
        self.assertEqual(again, r)
        self.assertEqual(again.toBytes(), r.toBytes())

    def test_equality(self):
        self.assertEqual(makeInvite(), makeInvite())
        self.assertNotEqual(makeInvite(), makeInvite(Subject="x"))
        other = makeInvite()
        other.method = "BYE"
        self.assertNotEqual(makeInvite(), other)
        self.assertNotEqual(makeInvite(), Response(200))

    def test_createResponse(self):
        """RFC 3261 §8.2.6.2: copy Via, From, To, Call-ID, CSeq."""
        r = makeInvite()
        resp = r.createResponse(180, toTag="a6c85cf")
        self.assertIsInstance(resp, Response)
        self.assertEqual(resp.status, 180)
        self.assertEqual(resp.reason, "Ringing")
        self.assertEqual([name for name, _ in resp.headers.items()],
                         ["Via", "Via", "To", "From", "Call-ID", "CSeq"])
        self.assertEqual(resp.headers.getLines("Via"), r.headers.getLines("Via"))
        self.assertEqual(resp.toAddr.tag, "a6c85cf")
        self.assertEqual(resp.headers.get("To"), "Bob <sip:bob@biloxi.example.com>;tag=a6c85cf")
        self.assertEqual(resp.fromAddr.tag, "1928301774")
        self.assertEqual(resp.callId, r.callId)
        self.assertEqual(resp.cseq, r.cseq)
        self.assertEqual(resp.body, b"")
        self.assertNotIn("Timestamp", resp.headers)

    def test_createResponse100Timestamp(self):
        resp = makeInvite().createResponse(100)
        self.assertEqual(resp.headers.get("Timestamp"), "54")
        self.assertIsNone(resp.toAddr.tag)
        self.assertEqual(resp.reason, "Trying")

    def test_createResponseKeepsToTag(self):
        r = makeInvite()
        r.headers.set("To", "<sip:bob@biloxi.example.com>;tag=old")
        resp = r.createResponse(200, "Fine", toTag="new")
        self.assertEqual(resp.toAddr.tag, "old")
        self.assertEqual(resp.reason, "Fine")

    def test_createResponseIndependent(self):
        r = makeInvite()
        resp = r.createResponse(200)
        resp.headers.add("Contact", "<sip:me@h>")
        self.assertEqual(len(r.headers.getAll("Contact")), 1)

    def test_createResponseParsed(self):
        resp = parseMessage(makeInvite().toBytes()).createResponse(486, toTag="x")
        again = parseMessage(resp.toBytes())
        self.assertEqual(again.status, 486)
        self.assertEqual(again.reason, "Busy Here")
        self.assertEqual(again.toAddr.tag, "x")


class ParsedViewTests(SynchronousTestCase):
    """
    The parsed views of a message are kept until the header they come
    from changes.
    """

    def test_otherHeaderChanged(self):
        """Changing one header keeps the views of the others."""
        req = parseMessage(makeInvite().toBytes())
        fromAddr, vias = req.fromAddr, req.vias
        req.headers.set("Subject", "x")
        req.headers.add("X-Other", "y")
        self.assertIs(req.fromAddr, fromAddr)
        self.assertIs(req.vias, vias)

    def test_sameHeaderChanged(self):
        """Changing (setting, adding, removing) a header drops its views."""
        req = parseMessage(makeInvite().toBytes())
        callId, cseq = req.callId, req.cseq
        req.headers.set("From", "<sip:carol@example.com>;tag=9")
        self.assertEqual(req.fromAddr.tag, "9")
        self.assertEqual(str(req.fromAddr.uri), "sip:carol@example.com")
        req.headers.addFirst("Via", "SIP/2.0/UDP new.example.com;branch=z9hG4bKnew")
        self.assertEqual(req.topVia.host, "new.example.com")
        self.assertEqual(len(req.vias), 4)
        req.headers.remove("Via")
        self.assertIsNone(req.topVia)
        self.assertEqual(req.vias, [])
        self.assertIs(req.callId, callId)
        self.assertIs(req.cseq, cseq)

    def test_setMany(self):
        """Setting several values replaces every line of the name, at the first's place."""
        headers = Headers([("Via", "a"), ("To", "t"), ("Via", "b"), ("From", "f")])
        headers.set("Via", ["c", "d"])
        self.assertEqual(headers.items(),
                         [("Via", "c"), ("Via", "d"), ("To", "t"), ("From", "f")])
        headers.set("Via", "e")
        self.assertEqual(headers.items(), [("Via", "e"), ("To", "t"), ("From", "f")])
        headers.set("Subject", "s")
        self.assertEqual(headers.items()[-1], ("Subject", "s"))

    def test_setOnePass(self):
        """
        The one-pass L{Headers.set}: absent (appended), one line (replaced
        in place), several lines (the first replaced, the others dropped),
        a list over one line, an empty list (removed).
        """
        headers = Headers([("To", "t"), ("Via", "a"), ("From", "f")])
        headers.set("Via", "b")
        self.assertEqual(headers.items(), [("To", "t"), ("Via", "b"), ("From", "f")])
        headers.set("Via", ["c", "d"])
        self.assertEqual(headers.items(),
                         [("To", "t"), ("Via", "c"), ("Via", "d"), ("From", "f")])
        headers.add("Via", "e")
        headers.set("Via", "g")
        self.assertEqual(headers.items(), [("To", "t"), ("Via", "g"), ("From", "f")])
        headers.set("Via", [])
        self.assertEqual(headers.items(), [("To", "t"), ("From", "f")])
        headers.set("Server", "s")
        self.assertEqual(headers.items()[-1], ("Server", "s"))

    def test_setTopVia(self):
        """
        L{Message.setTopVia} writes again only the first Via line (the
        others stay as received, even with odd spacing); the changed Via
        stays the parsed view and the bytes parse back to the same Vias.
        """
        data = makeInvite().toBytes().replace(
            b"p2.example.com;branch", b"p2.example.com ; branch")
        req = parseMessage(data)
        callId = req.callId
        top = req.vias[0]
        top.params["received"] = "192.0.2.1"
        req.setTopVia(top)
        self.assertIs(req.topVia, top)
        self.assertIs(req.vias[0], top)
        self.assertIs(req.callId, callId)
        lines = req.headers.getLines("Via")
        self.assertEqual(lines[0], str(top))
        self.assertIn("p2.example.com ; branch", lines[1])
        self.assertEqual(req.vias, parseMessage(req.toBytes()).vias)

    def test_setTopViaSeveralInLine(self):
        """A first Via line holding several Vias falls back to L{Message.setVias}."""
        req = parseMessage(makeInvite().toBytes().replace(
            b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n", b""))
        top = req.topVia
        self.assertEqual(top.host, "proxy.example.com")
        top.params["received"] = "192.0.2.1"
        req.setTopVia(top)
        self.assertIs(req.topVia, top)
        self.assertEqual(req.vias, parseMessage(req.toBytes()).vias)
        self.assertEqual(len(req.vias), 2)

    def test_setTopViaStaleViews(self):
        """
        With the views out of date (another header changed since), the new
        top Via line is kept and the other views are read again.
        """
        req = parseMessage(makeInvite().toBytes())
        top = req.topVia
        req.headers.set("From", "<sip:carol@example.com>;tag=9")
        top.params["received"] = "192.0.2.1"
        req.setTopVia(top)
        self.assertIs(req.topVia, top)
        self.assertEqual(req.fromAddr.tag, "9")
        self.assertEqual(req.vias, parseMessage(req.toBytes()).vias)

    def test_createResponseVias(self):
        """
        A response's Via view equals what parsing its Via lines gives, and
        is not shared with the request's.
        """
        req = parseMessage(makeInvite().toBytes())
        req.vias
        resp = req.createResponse(200, toTag="t")
        self.assertEqual(resp.vias, parseMessage(resp.toBytes()).vias)
        self.assertEqual(resp.topVia, req.topVia)
        self.assertIsNot(resp.topVia, req.topVia)
        resp.topVia.params["received"] = "192.0.2.9"
        self.assertIsNone(req.topVia.received)
        self.assertEqual(resp.callId, req.callId)
        self.assertEqual(resp.cseq, req.cseq)

    def test_setViasReparsed(self):
        """
        C{setVias(vias, reparsed=True)} keeps C{vias} as the view; without
        it the new lines are parsed again.
        """
        req = parseMessage(makeInvite().toBytes())
        vias = req.vias
        vias[0].params["received"] = "192.0.2.1"
        req.setVias(vias, reparsed=True)
        self.assertIs(req.topVia, vias[0])
        self.assertEqual(req.vias, parseMessage(req.toBytes()).vias)
        req.setVias(vias)
        self.assertIsNot(req.topVia, vias[0])
        self.assertEqual(req.topVia, vias[0])


class ResponseTests(SynchronousTestCase):
    """
    L{Response}.
    """

    def test_reasons(self):
        self.assertEqual(Response(200).reason, "OK")
        self.assertEqual(Response(404).reason, "Not Found")
        self.assertEqual(Response(487).reason, "Request Terminated")
        self.assertEqual(Response(499).reason, "Bad Request")
        self.assertEqual(Response(200, "").reason, "")

    def test_toBytes(self):
        resp = Response(200, None, [("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),
                                    ("Content-Type", "application/sdp")], b"v=0\r\n")
        self.assertEqual(resp.toBytes(),
                         b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                         b"Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n")
        self.assertTrue(isResponse(resp))
        self.assertFalse(isRequest(resp))

    def test_accessors(self):
        resp = Response(200, None, [("v", "SIP/2.0/UDP h;branch=z9hG4bK1;received=1.2.3.4"),
                                    ("i", "abc"), ("CSeq", "1 BYE")])
        self.assertEqual(resp.topVia.received, "1.2.3.4")
        self.assertEqual(resp.callId, "abc")
        self.assertEqual(resp.cseq.method, "BYE")

    def test_viaObject(self):
        resp = Response(200)
        resp.setVias([Via("TCP", "h", 5060, {"branch": "z9hG4bK1"})])
        self.assertEqual(resp.headers.get("Via"), "SIP/2.0/TCP h:5060;branch=z9hG4bK1")
