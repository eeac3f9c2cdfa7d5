"""
Tests for L{linkrtc.sip.parser}: L{parseMessage} (RFC 3261 §7, §18.3) and
L{StreamFramer}, fed whole, byte by byte, and many messages per chunk.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import SIPFramingError, SIPParseError
from linkrtc.sip.message import CSeq, Request, Response
from linkrtc.sip.parser import StreamFramer, parseMessage

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n"
    b"\r\n" + SDP
)

RESPONSE = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def replace(data, old, new):
    assert old in data, old
    return data.replace(old, new, 1)


class ParseMessageTests(SynchronousTestCase):
    """
    L{parseMessage} parses one whole message.
    """

    def assertFault(self, data, words, status=400, isRequest=True):
        e = self.assertRaises(SIPParseError, parseMessage, data)
        self.assertEqual(e.status, status)
        self.assertIn(words, e.reason)
        self.assertEqual(e.isRequest, isRequest)
        return e

    def test_request(self):
        msg = parseMessage(INVITE)
        self.assertIsInstance(msg, Request)
        self.assertEqual(msg.method, "INVITE")
        self.assertEqual(str(msg.uri), "sip:bob@biloxi.example.com")
        self.assertEqual(msg.uri.user, "bob")
        self.assertEqual(msg.version, "SIP/2.0")
        self.assertEqual(msg.body, SDP)
        self.assertEqual(msg.topVia.branch, "z9hG4bK776asdhds")
        self.assertEqual(msg.callId, "a84b4c76e66710@pc33.atlanta.example.com")
        self.assertEqual(msg.cseq, CSeq(314159, "INVITE"))
        self.assertEqual(msg.fromAddr.tag, "1928301774")
        self.assertEqual(msg.toAddr.display, "Bob")
        self.assertEqual(msg.maxForwards, 70)
        self.assertEqual(msg.contentType, "application/sdp")
        self.assertEqual(len(msg.contacts), 1)

    def test_response(self):
        msg = parseMessage(RESPONSE)
        self.assertIsInstance(msg, Response)
        self.assertEqual((msg.status, msg.reason), (180, "Ringing"))
        self.assertEqual(msg.topVia.received, "192.0.2.1")
        self.assertEqual(msg.toAddr.tag, "a6c85cf")
        self.assertEqual(msg.body, b"")

    def test_reasonWithSpaces(self):
        msg = parseMessage(replace(RESPONSE, b"180 Ringing", b"404 Not  Found Here "))
        self.assertEqual(msg.reason, "Not  Found Here ")

    def test_emptyReason(self):
        self.assertEqual(parseMessage(replace(RESPONSE, b"180 Ringing", b"100 ")).reason, "")
        self.assertEqual(parseMessage(replace(RESPONSE, b"180 Ringing", b"100")).reason, "")

    def test_verbatim(self):
        """An unmodified parsed message serialises to the same octets."""
        self.assertEqual(parseMessage(INVITE).toBytes(), INVITE)
        self.assertEqual(parseMessage(RESPONSE).toBytes(), RESPONSE)

    def test_verbatimValues(self):
        data = replace(INVITE, b"Max-Forwards: 70\r\n",
                       b"Max-Forwards: 70\r\nX-Odd:   a ;b;;,c  \r\nSubject:\r\n")
        msg = parseMessage(data)
        self.assertEqual(msg.headers.get("X-Odd"), "a ;b;;,c")
        self.assertEqual(msg.headers.get("Subject"), "")
        self.assertIn(b"\r\nX-Odd:   a ;b;;,c  \r\nSubject:\r\n", msg.toBytes())

    def test_roundTripModified(self):
        msg = parseMessage(INVITE)
        msg.headers.addFirst("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp")
        msg.headers.set("Max-Forwards", "69")
        msg.body = b"new body"
        again = parseMessage(msg.toBytes())
        self.assertEqual(again, msg)
        self.assertEqual(again.body, b"new body")
        self.assertEqual(again.topVia.host, "proxy.example.com")
        self.assertEqual(again.maxForwards, 69)

    def test_compactForms(self):
        data = (b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                b"f: <sip:c@d>;tag=1\r\nt: <sip:a@b>\r\ni: xyz\r\nCSeq: 1 OPTIONS\r\n"
                b"m: <sip:c@h>\r\nc: text/plain\r\nl: 2\r\n\r\nhi")
        msg = parseMessage(data)
        self.assertEqual(msg.callId, "xyz")
        self.assertEqual(msg.fromAddr.tag, "1")
        self.assertEqual(msg.headers.get("Call-ID"), "xyz")
        self.assertEqual([n for n, _ in msg.headers.items()],
                         ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type",
                          "Content-Length"])
        self.assertEqual(msg.body, b"hi")
        self.assertEqual(parseMessage(msg.toBytes()), msg)

    def test_folding(self):
        data = replace(INVITE, b"Max-Forwards: 70\r\n",
                       b"Max-Forwards:\r\n  70\r\nSubject: first\r\n\tsecond\r\n  third\r\n")
        msg = parseMessage(data)
        self.assertEqual(msg.maxForwards, 70)
        self.assertEqual(msg.headers.get("Subject"), "first second third")
        again = parseMessage(msg.toBytes())
        self.assertEqual(again, msg)

    def test_multiValue(self):
        data = replace(INVITE, b"Max-Forwards: 70\r\n",
                       b"Max-Forwards: 70\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK2, "
                       b"SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK3\r\n"
                       b"Route: <sip:p1;lr>, <sip:p2;lr>\r\nRoute: <sip:p3;lr>\r\n")
        msg = parseMessage(data)
        self.assertEqual([v.host for v in msg.vias],
                         ["pc33.atlanta.example.com", "a", "[2001:db8::1]"])
        self.assertEqual([r.uri.host for r in msg.routes], ["p1", "p2", "p3"])
        self.assertEqual(len(msg.headers.getAll("Route")), 3)

    def test_leadingCRLF(self):
        self.assertEqual(parseMessage(b"\r\n\r\n" + INVITE).method, "INVITE")

    def test_bareLF(self):
        end = INVITE.find(b"\r\n\r\n")
        msg = parseMessage(INVITE[:end].replace(b"\r\n", b"\n") + b"\n\n" + SDP)
        self.assertEqual(msg.body, SDP)
        self.assertEqual(msg.callId, "a84b4c76e66710@pc33.atlanta.example.com")

    def test_noEmptyLine(self):
        data = RESPONSE[:-2]
        self.assertEqual(parseMessage(data).status, 180)

    def test_noContentLength(self):
        """Over UDP, no Content-Length means the rest of the datagram."""
        data = replace(INVITE, b"Content-Length: %d\r\n" % len(SDP), b"")
        self.assertEqual(parseMessage(data).body, SDP)

    def test_extraOctets(self):
        self.assertEqual(parseMessage(INVITE + b"garbage").body, SDP)

    def test_methodCaseSensitive(self):
        data = replace(replace(INVITE, b"INVITE sip", b"invite sip"), b"314159 INVITE",
                       b"314159 invite")
        self.assertEqual(parseMessage(data).method, "invite")

    def test_versionCaseInsensitive(self):
        self.assertEqual(parseMessage(replace(INVITE, b" SIP/2.0\r\n", b" sip/2.0\r\n")).method,
                         "INVITE")

    def test_unknownMethodMismatch(self):
        """
        An unknown method whose CSeq method differs parses: the user-agent
        core answers 501 (RFC 4475 §3.1.2.18).
        """
        msg = parseMessage(replace(INVITE, b"INVITE sip", b"NEWMETHOD sip"))
        self.assertEqual(msg.method, "NEWMETHOD")

    def test_faultsRecoverHeaders(self):
        e = self.assertFault(replace(INVITE, b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"),
                             "CSeq method")
        names = [n for n, _ in e.headers]
        for name in ["Via", "From", "To", "Call-ID", "CSeq"]:
            self.assertIn(name, names)
        self.assertIn(("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com"), e.headers)

    def test_faults(self):
        cl = b"Content-Length: %d" % len(SDP)
        cases = [
            (replace(INVITE, cl, b"Content-Length: -3"), "Negative Content-Length"),
            (replace(INVITE, cl, b"Content-Length: five"), "Bad Content-Length"),
            (replace(INVITE, cl, b"Content-Length: 9999"), "Content-Length larger than message"),
            (replace(INVITE, cl, cl + b"\r\nl: 3"), "Conflicting Content-Length"),
            (replace(INVITE, b"CSeq: 314159 INVITE\r\n", b""), "Missing CSeq"),
            (replace(INVITE, b"Call-ID", b"X-Call-ID"), "Missing Call-ID"),
            (replace(INVITE, b"To:", b"Xto:"), "Missing To"),
            (replace(INVITE, b"From:", b"Xfrom:"), "Missing From"),
            (replace(INVITE, b"Via:", b"Xvia:"), "Missing Via"),
            (replace(INVITE, b"CSeq: 314159 INVITE", b"CSeq: 1 INVITE\r\nCSeq: 2 INVITE"),
             "More than one CSeq"),
            (replace(INVITE, b"CSeq: 314159", b"CSeq: 4294967296"), "CSeq number too large"),
            (replace(INVITE, b"CSeq: 314159", b"CSeq: x"), "Bad CSeq"),
            (replace(INVITE, b"Max-Forwards: 70", b"Max-Forwards: 256"), "Max-Forwards"),
            (replace(INVITE, b"Max-Forwards: 70", b"Max-Forwards: 7\r\nMax-Forwards: 7"),
             "More than one Max-Forwards"),
            (replace(INVITE, b"INVITE sip:bob@biloxi.example.com", b"INVITE <sip:bob@biloxi>"),
             "URI"),
            (replace(INVITE, b"sip:bob@biloxi.example.com SIP", b"sip:bob@biloxi.example.com; lr SIP"),
             "Malformed Request-Line"),
            (replace(INVITE, b"sip:bob@biloxi.example.com SIP", b"sip:bob@biloxi?Route=x SIP"),
             "Headers in Request-URI"),
            (replace(INVITE, b"INVITE sip", b"INV:TE sip"), "Bad method"),
            (replace(INVITE, b" SIP/2.0\r\n", b" HTTP/1.1\r\n"), "Malformed Request-Line"),
            (replace(INVITE, b"Max-Forwards: 70", b"Max-Forwards 70"), "Malformed header line"),
            (replace(INVITE, b"Max-Forwards: 70", b"Max Forwards: 70"), "Bad header name"),
            (replace(INVITE, b"Max-Forwards: 70", b": 70"), "Malformed header line"),
            (replace(INVITE, b"SIP/2.0\r\nVia", b"SIP/2.0\r\n x\r\nVia"), "Malformed Request-Line"),
            (replace(INVITE, b"INVITE sip:", b" INVITE sip:"), "Malformed Request-Line"),
            (replace(INVITE, b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\rX: y\r\n"), "Bare CR"),
            (replace(INVITE, b"Via: SIP/2.0/UDP pc33.atlanta.example.com;",
                     b"Via: SIP/2.0/UDP pc33.atlanta.example.com;;"), "Via"),
            (replace(INVITE, b"To: Bob <sip:bob@biloxi.example.com>", b"To: Bob <sip:bob@biloxi"),
             "name-addr"),
            (replace(INVITE, b"From: Alice", b"From: Al,ice"), "display name"),
            (replace(INVITE, b"Contact: <sip:alice@pc33.atlanta.example.com>",
                     b"Contact: <sip:alice@pc33.atlanta.example.com>,"), "Empty element"),
            (replace(INVITE, b"Call-ID: a84b", b"Call-ID: a 84b"), "Bad Call-ID"),
        ]
        for data, words in cases:
            e = self.assertFault(data, words)
            self.assertTrue(e.reason.startswith("Bad Request ("), e.reason)

    def test_hugeContentLength(self):
        """
        A Content-Length of thousands of digits (more than C{int()} takes
        from text) is a 400, not a C{ValueError}; leading zeros are fine.
        """
        cl = b"Content-Length: %d" % len(SDP)
        self.assertFault(replace(INVITE, cl, b"Content-Length: " + b"9" * 4300),
                         "Content-Length larger than message")
        msg = parseMessage(replace(INVITE, cl, b"Content-Length: " + b"0" * 5000 + b"%d" % len(SDP)))
        self.assertEqual(msg.body, SDP)

    def test_faultNamesHeader(self):
        """A malformed Via, From, To or Contact: the reason names the header."""
        for old, new, header in [
            (b"Via: SIP/2.0/UDP pc33.atlanta.example.com;", b"Via: SIP/2.0/UDP pc33:99999;", "Via"),
            (b"To: Bob <sip:bob@biloxi.example.com>", b"To: Bob <sip:bob@biloxi", "To"),
            (b"Contact: <sip:alice@pc33.atlanta.example.com>", b"Contact: <sip:alice@[::1>",
             "Contact"),
        ]:
            data = replace(INVITE, old, new)
            self.assertIn(header, self.assertFault(data, "Bad Request").reason)

    def test_badVersion(self):
        e = self.assertFault(replace(INVITE, b" SIP/2.0\r\n", b" SIP/7.0\r\n"),
                             "Version Not Supported", 505)
        self.assertIn("Call-ID", [n for n, _ in e.headers])

    def test_responseFaults(self):
        for code in [b"4294967301", b"99", b"700", b"abc", b"1000", b"099", b"20"]:
            self.assertFault(replace(RESPONSE, b"180", code), "status code", isRequest=False)
        self.assertFault(replace(RESPONSE, b"SIP/2.0 180", b"SIP/3.0 180"), "Version",
                         status=505, isRequest=False)
        self.assertFault(b"SIP/2.0\r\n\r\n", "Status-Line", isRequest=False)

    def test_empty(self):
        self.assertRaises(SIPParseError, parseMessage, b"")
        self.assertRaises(SIPParseError, parseMessage, b"\r\n\r\n")
        self.assertRaises(SIPParseError, parseMessage, b"garbage")
        self.assertRaises(SIPParseError, parseMessage, b"\x00\xff\xfe\r\n\r\n")

    def test_limits(self):
        self.assertFault(INVITE + b"x" * 70000, "Message Too Large", status=513, isRequest=None)
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(300))
        self.assertFault(replace(INVITE, b"Max-Forwards: 70\r\n", many), "Too many header lines")
        long = b"X-Long: " + b"a" * 9000 + b"\r\n"
        self.assertFault(replace(INVITE, b"Max-Forwards: 70\r\n", long), "Header line too long")
        fine = b"X-Long: " + b"a" * 8000 + b"\r\n"
        self.assertEqual(len(parseMessage(replace(INVITE, b"Max-Forwards: 70\r\n", fine))
                             .headers.get("X-Long")), 8000)

    def test_nonUTF8Preserved(self):
        data = replace(INVITE, b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\nX-Bin: \xff\xfe\x00\r\n")
        msg = parseMessage(data)
        self.assertEqual(msg.toBytes(), data)

    def test_lazyURI(self):
        """
        The Request-URI is kept as text until used; once read it is an
        object whose changes are serialised.
        """
        msg = parseMessage(INVITE)
        msg.uri.params["transport"] = "tcp"
        self.assertTrue(msg.toBytes().startswith(
            b"INVITE sip:bob@biloxi.example.com;transport=tcp SIP/2.0\r\n"))

    def test_garbageNeverCrashes(self):
        """Truncations of a message either parse or raise SIPParseError."""
        for n in range(len(INVITE)):
            try:
                parseMessage(INVITE[:n])
            except SIPParseError:
                pass


class FiveDigitPortTests(SynchronousTestCase):
    """
    Ports of five digits (ephemeral ports) parse the same as short ones;
    above 65535 they are refused.
    """

    def test_accepted(self):
        data = INVITE.replace(b"biloxi.example.com", b"192.0.2.4:65535")
        data = data.replace(b"pc33.atlanta.example.com", b"192.0.2.5:45999")
        msg = parseMessage(data)
        self.assertEqual(msg.uri.port, 65535)
        self.assertEqual(msg.topVia.port, 45999)
        self.assertEqual(msg.toAddr.uri.port, 65535)
        self.assertEqual(msg.fromAddr.uri.host, "atlanta.example.com")
        self.assertEqual(msg.contacts[0].uri.port, 45999)
        self.assertEqual(msg.toBytes(), data)

    def test_refused(self):
        for old, new in [(b"INVITE sip:bob@biloxi.example.com", b"INVITE sip:bob@h:65536"),
                         (b"UDP pc33.atlanta.example.com", b"UDP h:65536"),
                         (b"<sip:bob@biloxi.example.com>", b"<sip:bob@h:99999>"),
                         (b"<sip:alice@pc33.atlanta.example.com>", b"<sip:a@h:65536>")]:
            self.assertRaises(SIPParseError, parseMessage, replace(INVITE, old, new))


class StreamFramerTests(SynchronousTestCase):
    """
    L{StreamFramer} cuts a stream into messages. L{feed} sends the data in
    one call; subclasses send it byte by byte and glue messages together.
    """

    def makeFramer(self, **kw):
        return StreamFramer(**kw)

    def feed(self, framer, data):
        return framer.feed(data)

    def feedAll(self, framer, chunks):
        out = []
        for chunk in chunks:
            out.extend(self.feed(framer, chunk))
        return out

    def test_one(self):
        framer = self.makeFramer()
        self.assertEqual(self.feed(framer, INVITE), [INVITE])
        self.assertEqual(parseMessage(INVITE).body, SDP)

    def test_several(self):
        framer = self.makeFramer()
        out = self.feedAll(framer, [INVITE, RESPONSE, INVITE])
        self.assertEqual(out, [INVITE, RESPONSE, INVITE])

    def test_keepAlives(self):
        framer = self.makeFramer()
        out = self.feedAll(framer, [b"\r\n\r\n", INVITE, b"\r\n", RESPONSE, b"\r\n\r\n\r\n"])
        self.assertEqual(out, [INVITE, RESPONSE])
        self.assertEqual(self.feed(framer, b""), [])

    def test_partialWaits(self):
        framer = self.makeFramer()
        self.assertEqual(self.feed(framer, INVITE[:-5]), [])
        self.assertEqual(self.feed(framer, INVITE[-5:] + RESPONSE[:10]), [INVITE])
        self.assertEqual(self.feed(framer, RESPONSE[10:]), [RESPONSE])

    def test_bodyWithBlankLines(self):
        body = b"\r\n\r\nINVITE sip:x SIP/2.0\r\n\r\n"
        data = replace(INVITE, b"Content-Length: %d\r\n\r\n" % len(SDP),
                       b"Content-Length: %d\r\n\r\n" % (len(SDP) + len(body))) + body
        framer = self.makeFramer()
        self.assertEqual(self.feedAll(framer, [data, RESPONSE]), [data, RESPONSE])

    def test_compactAndFoldedContentLength(self):
        data = replace(INVITE, b"Content-Length: %d" % len(SDP), b"l :\r\n %d" % len(SDP))
        self.assertEqual(self.feedAll(self.makeFramer(), [data, RESPONSE]), [data, RESPONSE])

    def assertFraming(self, chunks, words, **kw):
        framer = self.makeFramer(**kw)
        e = self.assertRaises(SIPFramingError, self.feedAll, framer, chunks)
        self.assertIn(words, e.reason)
        self.assertEqual(e.status, 400)
        # The framer stays broken.
        self.assertRaises(SIPFramingError, framer.feed, RESPONSE)
        return e

    def test_missingContentLength(self):
        data = replace(INVITE, b"Content-Length: %d\r\n" % len(SDP), b"")
        e = self.assertFraming([data], "Missing Content-Length")
        self.assertTrue(e.isRequest)
        self.assertIn("Call-ID", [n for n, _ in e.headers])

    def test_negativeContentLength(self):
        self.assertFraming([replace(INVITE, b"Content-Length: %d" % len(SDP),
                                    b"Content-Length: -999")], "Negative Content-Length")

    def test_badContentLength(self):
        self.assertFraming([replace(INVITE, b"Content-Length: %d" % len(SDP),
                                    b"Content-Length: five")], "Bad Content-Length")

    def test_conflictingContentLength(self):
        self.assertFraming([replace(INVITE, b"Content-Length: %d" % len(SDP),
                                    b"Content-Length: 13\r\nl: 5")], "Conflicting")

    def test_hugeContentLengthStream(self):
        """Thousands of digits of Content-Length on a stream: a framing error."""
        data = replace(INVITE, b"Content-Length: %d" % len(SDP),
                       b"Content-Length: " + b"9" * 4300)
        self.assertRaises(SIPFramingError, self.feedAll, self.makeFramer(), [data])

    def test_tooLarge(self):
        """A huge Content-Length is refused as soon as the header is read."""
        framer = self.makeFramer()
        data = replace(INVITE, b"Content-Length: %d" % len(SDP), b"Content-Length: 100000")
        head = data[: data.find(b"\r\n\r\n") + 4]
        self.assertRaises(SIPFramingError, self.feedAll, framer, [head])
        self.assertEqual(len(framer._buffer), 0)

    def test_endlessHeader(self):
        """Header lines that never end are refused before 64 KiB are buffered."""
        framer = self.makeFramer(maxHeaders=10000, maxLineLength=100000)
        chunks = [b"INVITE sip:a@b SIP/2.0\r\n"] + [b"X-Pad: " + b"p" * 1000 + b"\r\n"] * 70
        e = self.assertFraming(chunks, "Message too large", maxHeaders=10000,
                               maxLineLength=100000)
        self.assertTrue(e.reason.startswith("Bad Request ("))
        del framer

    def test_longLine(self):
        self.assertFraming([b"INVITE sip:a@b SIP/2.0\r\nX-Long: " + b"a" * 200],
                           "Header line too long", maxLineLength=100)

    def test_longCompleteLine(self):
        self.assertFraming([b"INVITE sip:a@b SIP/2.0\r\nX-Long: " + b"a" * 200 + b"\r\nX: y\r\n"],
                           "Header line too long", maxLineLength=100)

    def test_tooManyHeaders(self):
        self.assertFraming([b"INVITE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 20],
                           "Too many header lines", maxHeaders=10)

    def test_limitsAllowNormal(self):
        framer = self.makeFramer(maxMessageSize=len(INVITE), maxHeaders=9, maxLineLength=80)
        self.assertEqual(self.feedAll(framer, [INVITE, INVITE]), [INVITE, INVITE])

    def test_messageLimitExact(self):
        framer = self.makeFramer(maxMessageSize=len(INVITE) - 1)
        self.assertRaises(SIPFramingError, self.feedAll, framer, [INVITE])


class ByteByByteStreamFramerTests(StreamFramerTests):
    """
    The same, with every chunk fed one byte at a time.
    """

    def feed(self, framer, data):
        out = []
        for i in range(len(data)):
            out.extend(framer.feed(data[i : i + 1]))
        return out


class ManyPerChunkStreamFramerTests(StreamFramerTests):
    """
    The same, with all chunks glued together and fed in one call.
    """

    def feedAll(self, framer, chunks):
        return framer.feed(b"".join(chunks))

    def test_hundred(self):
        framer = self.makeFramer()
        out = framer.feed((INVITE + RESPONSE) * 100 + INVITE[:20])
        self.assertEqual(out, [INVITE, RESPONSE] * 100)
        self.assertEqual(framer.feed(INVITE[20:]), [INVITE])
