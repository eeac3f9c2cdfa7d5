"""
Tests for L{linkrtc.sip.uri}: URIs, name-addr and Via values (RFC 3261 §19,
§20, §25; RFC 5118).
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.error import SIPParseError
from linkrtc.sip.uri import (
    SIPURI,
    WILDCARD,
    AbsoluteURI,
    NameAddr,
    TelURI,
    Via,
    parseNameAddr,
    parseNameAddrList,
    parseURI,
    parseVia,
    splitCommas,
)


class ParseURITests(SynchronousTestCase):
    """
    L{parseURI} parses SIP, SIPS, tel and other absolute URIs.
    """

    def test_simple(self):
        uri = parseURI("sip:alice@atlanta.example.com")
        self.assertIsInstance(uri, SIPURI)
        self.assertEqual(uri.scheme, "sip")
        self.assertEqual(uri.user, "alice")
        self.assertIsNone(uri.password)
        self.assertEqual(uri.host, "atlanta.example.com")
        self.assertIsNone(uri.port)
        self.assertEqual(uri.params, {})
        self.assertEqual(uri.headers, {})
        self.assertIsNone(uri.transport)

    def test_full(self):
        uri = parseURI("sips:bob:secret@biloxi.example.com:5061;transport=TCP;lr;Maddr=x?subject=hi&a=b")
        self.assertEqual(uri.scheme, "sips")
        self.assertEqual(uri.user, "bob")
        self.assertEqual(uri.password, "secret")
        self.assertEqual(uri.port, 5061)
        self.assertEqual(uri.params, {"transport": "TCP", "lr": None, "maddr": "x"})
        self.assertEqual(list(uri.params), ["transport", "lr", "maddr"])
        self.assertEqual(uri.headers, {"subject": "hi", "a": "b"})
        self.assertEqual(uri.transport, "TCP")

    def test_schemeCaseInsensitive(self):
        self.assertEqual(parseURI("SIP:a@b").scheme, "sip")

    def test_noUser(self):
        uri = parseURI("sip:example.com:5070")
        self.assertIsNone(uri.user)
        self.assertEqual((uri.host, uri.port), ("example.com", 5070))

    def test_ipv4(self):
        uri = parseURI("sip:192.0.2.1:5060")
        self.assertEqual(uri.host, "192.0.2.1")

    def test_ipv6(self):
        """
        An IPv6 reference keeps its brackets; a port follows the bracket
        (RFC 5118 §4.3, §4.4).
        """
        uri = parseURI("sip:[2001:db8::10]")
        self.assertEqual((uri.host, uri.port), ("[2001:db8::10]", None))
        uri = parseURI("sip:[2001:db8::10:5070]")
        self.assertEqual((uri.host, uri.port), ("[2001:db8::10:5070]", None))
        uri = parseURI("sip:user@[2001:db8::10]:5070;transport=udp")
        self.assertEqual((uri.host, uri.port), ("[2001:db8::10]", 5070))
        self.assertEqual(str(uri), "sip:user@[2001:db8::10]:5070;transport=udp")

    def test_ipv6Bad(self):
        """
        IPv6 without brackets, a bad address, or three colons are refused
        (RFC 5118 §4.2, §4.10).
        """
        for text in ["sip:2001:db8::10", "sip:[2001:db8:::192.0.2.1]", "sip:[2001:db8::10",
                     "sip:[2001:db8::10]x", "sip:[zz::1]"]:
            self.assertRaises(SIPParseError, parseURI, text)
        self.assertEqual(parseURI("sip:[2001:db8::192.0.2.1]").host, "[2001:db8::192.0.2.1]")

    def test_badPort(self):
        for text in ["sip:a@b:", "sip:a@b:x", "sip:a@b:70000", "sip:a@b:123456"]:
            self.assertRaises(SIPParseError, parseURI, text)

    def test_bad(self):
        for text in ["", "sip", ":x", "sip:", "sip:@host", "<sip:a@b>", "sip:a b@c", "sip:a@b;",
                     "sip:a@b;=x", "sip:a@b?x", "sip:a@-b", "1x:foo", "sip:a@b c", "sip:a%4@b",
                     "sip:a%zz@b", "http:", "tel:", "x:a b"]:
            self.assertRaises(SIPParseError, parseURI, text)

    def test_errorStatus(self):
        e = self.assertRaises(SIPParseError, parseURI, "sip:2001:db8::10")
        self.assertEqual(e.status, 400)
        self.assertTrue(e.reason.startswith("Bad Request ("))

    def test_escapes(self):
        """
        User, password, parameters and headers are unescaped once (RFC 3261
        §19.1.2; RFC 4475 §3.1.1.3).
        """
        uri = parseURI("sip:sips%3Auser%40example.com@example.net")
        self.assertEqual(uri.user, "sips:user@example.com")
        self.assertEqual(uri.host, "example.net")
        uri = parseURI("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
        self.assertEqual(uri.user, "caller")
        self.assertEqual(uri.params, {"lr": None, "name": "value%41"})

    def test_escapedNull(self):
        """
        C{%00} gives a NUL in the user part, which is not cut there (RFC
        4475 §3.1.1.4), and comes back escaped.
        """
        uri = parseURI("sip:null-%00-null@example.com")
        self.assertEqual(uri.user, "null-\x00-null")
        self.assertEqual(str(uri), "sip:null-%00-null@example.com")
        self.assertNotEqual(parseURI("sip:%00@h"), parseURI("sip:%00%00@h"))

    def test_escapedUTF8(self):
        uri = parseURI("sip:%C3%A9t%C3%A9@example.com")
        self.assertEqual(uri.user, "\u00e9t\u00e9")
        self.assertEqual(str(uri), "sip:%C3%A9t%C3%A9@example.com")
        uri = parseURI("sip:%FF@example.com")
        self.assertEqual(str(uri), "sip:%FF@example.com")

    def test_semicolonUser(self):
        """RFC 4475 §3.1.1.9: the user part holds C{;} and an escaped C{@}."""
        uri = parseURI("sip:user;par=u%40example.net@example.com")
        self.assertEqual(uri.user, "user;par=u@example.net")
        self.assertEqual(uri.host, "example.com")
        self.assertEqual(uri.params, {})
        self.assertEqual(str(uri), "sip:user;par=u%40example.net@example.com")

    def test_oddUser(self):
        """RFC 4475 §3.1.1.2: many unreserved characters in user and password."""
        uri = parseURI("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*"
                       "pas$wo~d_too.(doesn't-it)@example.com")
        self.assertEqual(uri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        self.assertEqual(uri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        self.assertEqual(uri.host, "example.com")

    def test_escapedHeaders(self):
        uri = parseURI("sip:user@example.com?Route=%3Csip:sip.example.com%3E")
        self.assertEqual(uri.headers, {"Route": "<sip:sip.example.com>"})
        self.assertEqual(str(uri), "sip:user@example.com?Route=%3Csip:sip.example.com%3E")

    def test_tel(self):
        uri = parseURI("tel:+1-201-555-0123;Phone-Context=example.com")
        self.assertIsInstance(uri, TelURI)
        self.assertEqual(uri.number, "+1-201-555-0123")
        self.assertEqual(uri.params, {"phone-context": "example.com"})
        self.assertEqual(str(uri), "tel:+1-201-555-0123;phone-context=example.com")
        self.assertEqual(uri, parseURI("tel:+12015550123;phone-context=EXAMPLE.com"))

    def test_absolute(self):
        for text in ["http://www.example.com", "isbn:2983792873", "name:John_Smith",
                     "soap.beep://192.0.2.103:3002"]:
            uri = parseURI(text)
            self.assertIsInstance(uri, AbsoluteURI)
            self.assertEqual(str(uri), text)
        self.assertEqual(parseURI("ISBN:1").scheme, "isbn")
        self.assertEqual(parseURI("isbn:1"), AbsoluteURI("isbn", "1"))

    def test_strRoundTrip(self):
        for text in ["sip:alice@atlanta.example.com",
                     "sips:bob:pw@[2001:db8::1]:5061;transport=tls;lr?h=v",
                     "sip:+1234@gw;user=phone", "sip:example.com",
                     "sip:a%20b@example.com;x=%22"]:
            uri = parseURI(text)
            self.assertEqual(str(uri), text)
            self.assertEqual(parseURI(str(uri)), uri)

    def test_strEscapes(self):
        uri = SIPURI(user="a b@c", host="example.com", params={"x": "y;z", "lr": None},
                     headers={"Subject": "hi there"})
        self.assertEqual(str(uri), "sip:a%20b%40c@example.com;x=y%3Bz;lr?Subject=hi%20there")
        self.assertEqual(parseURI(str(uri)), uri)
        self.assertEqual(parseURI(str(uri)).user, "a b@c")

    def test_noRecursiveUnescape(self):
        uri = parseURI("sip:value%2541@example.com")
        self.assertEqual(uri.user, "value%41")
        self.assertNotEqual(uri, parseURI("sip:valueA@example.com"))
        self.assertEqual(str(uri), "sip:value%2541@example.com")

    def test_copy(self):
        uri = parseURI("sip:a@b;lr")
        other = uri.copy()
        other.params["x"] = "1"
        self.assertEqual(uri.params, {"lr": None})


class URIEqualityTests(SynchronousTestCase):
    """
    SIP URI comparison, RFC 3261 §19.1.4, using the RFC's own examples.
    """

    def assertEquivalent(self, a, b):
        self.assertEqual(parseURI(a), parseURI(b))
        self.assertEqual(parseURI(b), parseURI(a))
        self.assertEqual(hash(parseURI(a)), hash(parseURI(b)))

    def assertNotEquivalent(self, a, b):
        self.assertNotEqual(parseURI(a), parseURI(b))
        self.assertNotEqual(parseURI(b), parseURI(a))

    def test_equivalent(self):
        self.assertEquivalent("sip:%61lice@atlanta.com;transport=TCP",
                              "sip:alice@AtLanTa.CoM;Transport=tcp")
        self.assertEquivalent("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5")
        self.assertEquivalent("sip:carol@chicago.com;security=on",
                              "sip:carol@chicago.com;newparam=5")
        self.assertEquivalent("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                              "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com")
        self.assertEquivalent("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                              "sip:alice@atlanta.com?priority=urgent&subject=project%20x")
        self.assertEquivalent("sip:[2001:db8::1]", "sip:[2001:DB8:0::1]")

    def test_notEquivalent(self):
        self.assertNotEquivalent("SIP:ALICE@AtLanTa.CoM;Transport=udp",
                                 "sip:alice@AtLanTa.CoM;Transport=UDP")
        self.assertNotEquivalent("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060")
        self.assertNotEquivalent("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp")
        self.assertNotEquivalent("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp")
        self.assertNotEquivalent("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting")
        self.assertNotEquivalent("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4")
        self.assertNotEquivalent("sip:carol@chicago.com;security=on",
                                 "sip:carol@chicago.com;security=off")
        self.assertNotEquivalent("sip:a@b", "sips:a@b")
        self.assertNotEquivalent("sip:a:x@b", "sip:a@b")

    def test_otherTypes(self):
        self.assertNotEqual(parseURI("sip:a@b"), "sip:a@b")
        self.assertNotEqual(parseURI("sip:a@b"), parseURI("tel:123"))


class SplitCommasTests(SynchronousTestCase):
    """
    L{splitCommas} splits at commas outside quoted strings and C{<>}.
    """

    def test_simple(self):
        self.assertEqual(splitCommas("a, b ,c"), ["a", "b", "c"])
        self.assertEqual(splitCommas("a"), ["a"])
        self.assertEqual(splitCommas("a,,"), ["a", "", ""])

    def test_quotedAndAngles(self):
        self.assertEqual(
            splitCommas('"Bell, A." <sip:a@b;x=1,2>, <sip:c@d>;q="x,\\"y", e'),
            ['"Bell, A." <sip:a@b;x=1,2>', '<sip:c@d>;q="x,\\"y"', "e"])


class NameAddrTests(SynchronousTestCase):
    """
    L{parseNameAddr}, L{parseNameAddrList} and L{NameAddr}.
    """

    def test_nameAddr(self):
        addr = parseNameAddr('"Alice Smith" <sip:alice@atlanta.example.com>;tag=9fxced76sl')
        self.assertEqual(addr.display, "Alice Smith")
        self.assertEqual(addr.uri, parseURI("sip:alice@atlanta.example.com"))
        self.assertEqual(addr.tag, "9fxced76sl")
        self.assertEqual(str(addr), '"Alice Smith" <sip:alice@atlanta.example.com>;tag=9fxced76sl')

    def test_addrSpec(self):
        """Without C{<>}, C{;} parameters belong to the header, not the URI."""
        addr = parseNameAddr("sip:+19725552222@gw1.example.net;unknownparam")
        self.assertIsNone(addr.display)
        self.assertEqual(addr.uri.params, {})
        self.assertEqual(addr.params, {"unknownparam": None})
        self.assertEqual(str(addr), "<sip:+19725552222@gw1.example.net>;unknownparam")

    def test_uriParamKept(self):
        addr = parseNameAddr("<sip:+19725552222@gw1.example.net;unknownparam>")
        self.assertEqual(addr.uri.params, {"unknownparam": None})
        self.assertEqual(addr.params, {})

    def test_tokenDisplay(self):
        addr = parseNameAddr("A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe")
        self.assertEqual(addr.display, "A. Bell")
        addr = parseNameAddr("caller<sip:caller@example.com>;tag=323")
        self.assertEqual(addr.display, "caller")
        self.assertEqual(addr.tag, "323")

    def test_quotedDisplayEscapes(self):
        addr = parseNameAddr('"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8')
        self.assertEqual(addr.display, 'J Rosenberg \\"')
        self.assertEqual(addr.tag, "98asjd8")
        again = parseNameAddr(str(addr))
        self.assertEqual(again, addr)

    def test_lwsAroundParams(self):
        addr = parseNameAddr("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")
        self.assertEqual(addr.tag, "1918181833n")
        self.assertEqual(addr.uri.host, "chair-dnrc.example.com")

    def test_quotedParam(self):
        addr = parseNameAddr('<sip:a@b>;x="a;b";Q=0.5')
        self.assertEqual(addr.params, {"x": '"a;b"', "q": "0.5"})
        self.assertEqual(str(addr), '<sip:a@b>;x="a;b";q=0.5')

    def test_otherSchemes(self):
        self.assertIsInstance(parseNameAddr("isbn:2983792873").uri, AbsoluteURI)
        self.assertIsInstance(parseNameAddr("<http://www.example.com>;tag=3").uri, AbsoluteURI)
        self.assertIsInstance(parseNameAddr("<tel:+1234>").uri, TelURI)

    def test_bad(self):
        for text in ['"Mr. J. User <sip:j.user@example.com>',  # unterminated quote
                     "Bell, Alexander <sip:a.g.bell@example.com>",  # comma in display
                     '"Watson, Thomas" < sip:t.watson@example.org >',  # spaces in <>
                     "sip:user@example.com?Route=%3Csip:sip.example.com%3E",  # ? without <>
                     '"Joe" <sip:joe@example.org>;;;;',  # empty params
                     "<sip:a@b", "", '"x" sip:a@b', "<>", "<sip:a@b>junk", "<sip:a@b>;t=",
                     "<sip:a@b>;=x", "<sip:a@b>;x=\"y"]:
            self.assertRaises(SIPParseError, parseNameAddr, text)

    def test_list(self):
        addrs = parseNameAddrList('<sip:a@b>;q=0.5, "C, D" <sip:c@d>, sip:e@f;expires=60')
        self.assertEqual([str(a.uri) for a in addrs], ["sip:a@b", "sip:c@d", "sip:e@f"])
        self.assertEqual(addrs[1].display, "C, D")
        self.assertEqual(addrs[2].params, {"expires": "60"})

    def test_listBad(self):
        self.assertRaises(SIPParseError, parseNameAddrList, "<sip:a@b>,")
        self.assertRaises(SIPParseError, parseNameAddrList, ",<sip:a@b>")

    def test_wildcard(self):
        self.assertEqual(parseNameAddrList(" * "), [WILDCARD])
        self.assertTrue(WILDCARD.isWildcard)
        self.assertFalse(parseNameAddr("<sip:a@b>").isWildcard)
        self.assertEqual(str(WILDCARD), "*")

    def test_tagSetter(self):
        addr = NameAddr(parseURI("sip:a@b"))
        self.assertIsNone(addr.tag)
        addr.tag = "xyz"
        self.assertEqual(str(addr), "<sip:a@b>;tag=xyz")
        addr.tag = None
        self.assertEqual(str(addr), "<sip:a@b>")

    def test_displayQuotedOnOutput(self):
        addr = NameAddr(parseURI("sip:a@b"), 'say "hi" \\ bye')
        self.assertEqual(str(addr), '"say \\"hi\\" \\\\ bye" <sip:a@b>')
        self.assertEqual(parseNameAddr(str(addr)).display, 'say "hi" \\ bye')

    def test_copy(self):
        addr = parseNameAddr("<sip:a@b>;tag=1")
        other = addr.copy()
        other.tag = "2"
        other.uri.params["lr"] = None
        self.assertEqual(str(addr), "<sip:a@b>;tag=1")


class ViaTests(SynchronousTestCase):
    """
    L{parseVia} and L{Via} (RFC 3261 §20.42, RFC 3581, RFC 5118 §4.5).
    """

    def test_simple(self):
        [via] = parseVia("SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport")
        self.assertEqual(via.protocol, "SIP/2.0")
        self.assertEqual(via.transport, "UDP")
        self.assertEqual(via.host, "pc33.atlanta.example.com")
        self.assertEqual(via.port, 5060)
        self.assertEqual(via.branch, "z9hG4bK776asdhds")
        self.assertIs(via.rport, True)
        self.assertIsNone(via.received)
        self.assertIsNone(via.maddr)
        self.assertIsNone(via.ttl)
        self.assertEqual(via.sentBy, ("pc33.atlanta.example.com", 5060))
        self.assertEqual(str(via), "SIP/2.0/UDP pc33.atlanta.example.com:5060;"
                                   "branch=z9hG4bK776asdhds;rport")

    def test_values(self):
        [via] = parseVia("SIP/2.0/tcp h;rport=5070;received=192.0.2.1;maddr=224.2.0.1;ttl=16")
        self.assertEqual(via.transport, "TCP")
        self.assertEqual(via.rport, 5070)
        self.assertEqual(via.received, "192.0.2.1")
        self.assertEqual(via.maddr, "224.2.0.1")
        self.assertEqual(via.ttl, 16)
        self.assertIsNone(via.port)

    def test_badValues(self):
        [via] = parseVia("SIP/2.0/UDP h;rport=x;ttl=300")
        self.assertRaises(SIPParseError, lambda: via.rport)
        self.assertRaises(SIPParseError, lambda: via.ttl)

    def test_lws(self):
        """RFC 4475 §3.1.1.1: LWS around C{/}, C{;}, C{=} and C{:}."""
        vias = parseVia("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8  ,"
                        "  SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239")
        self.assertEqual([(v.transport, v.host, v.branch) for v in vias],
                         [("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
                          ("UDP", "192.168.255.111", "z9hG4bK30239")])
        [via] = parseVia("SIP/2.0/UDP host : 5070 ;branch=z9hG4bKx")
        self.assertEqual(via.port, 5070)

    def test_several(self):
        vias = parseVia("SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b:5061;branch=z9hG4bK2")
        self.assertEqual([v.host for v in vias], ["a", "b"])

    def test_ipv6(self):
        [via] = parseVia("SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255];branch=z9hG4bKas3")
        self.assertEqual((via.host, via.port), ("[2001:db8::9:1]", 6050))
        self.assertEqual(via.received, "[2001:db8::9:255]")
        [via] = parseVia("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
        self.assertEqual(via.received, "2001:db8::9:255")
        self.assertIsNone(via.port)

    def test_otherTransports(self):
        for transport in ["SCTP", "TLS", "UNKNOWN", "WS", "WSS"]:
            self.assertEqual(parseVia("SIP/2.0/%s h" % transport)[0].transport, transport)

    def test_bad(self):
        for text in ["SIP/2.0/UDP 192.0.2.15;;,;,,", "SIP/2.0/UDP", "SIP/2.0 h", "SIP/2.0/UDP h;",
                     "SIP/2.0/UDP h:99999", "SIP/2.0/UDP [::1", "SIP/2.0/UDP [2001:db8:::1]",
                     "SIP/2.0/UDP h, ", "SIP/2.0/UDP h junk", "SIP/2.0/UDP h;branch=a b", ""]:
            self.assertRaises(SIPParseError, parseVia, text)

    def test_setters(self):
        via = Via("UDP", "example.com", 5060, {"branch": "z9hG4bKa"})
        via.received = "192.0.2.1"
        via.rport = 1234
        self.assertEqual(str(via), "SIP/2.0/UDP example.com:5060;branch=z9hG4bKa;"
                                   "received=192.0.2.1;rport=1234")
        via.rport = True
        self.assertIs(parseVia(str(via))[0].rport, True)
        via.rport = None
        self.assertNotIn("rport", str(via))
        via.branch = "z9hG4bKb"
        self.assertEqual(parseVia(str(via))[0].branch, "z9hG4bKb")

    def test_roundTrip(self):
        for text in ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/TLS [::1]:5061;branch=x;rport=4",
                     'SIP/2.0/UDP a;x="q;v";y']:
            [via] = parseVia(text)
            self.assertEqual(str(via), text)
            self.assertEqual(parseVia(str(via)), [via])

    def test_copy(self):
        [via] = parseVia("SIP/2.0/UDP a;branch=z9hG4bK1")
        other = via.copy()
        other.branch = "x"
        self.assertEqual(via.branch, "z9hG4bK1")
