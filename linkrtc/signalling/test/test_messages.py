"""
Tests for L{linkrtc.signalling.messages}.
"""

import json

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.signalling.messages import (
    CLIENT_MESSAGE_TYPES,
    MAX_MESSAGE_SIZE,
    MessageError,
    isValidClientName,
    parseClientMessage,
)


def parse(**fields):
    return parseClientMessage(json.dumps(fields))


class ValidMessageTests(SynchronousTestCase):
    """Every documented client message parses into its checked fields."""

    def test_register(self):
        self.assertEqual(
            parse(type="register", client="alice", token="s3cret"),
            {"type": "register", "client": "alice", "token": "s3cret", "trace": False},
        )

    def test_registerWithoutToken(self):
        self.assertEqual(parse(type="register", client="a.b@c+d-e_f"),
                         {"type": "register", "client": "a.b@c+d-e_f", "trace": False})

    def test_registerTrace(self):
        self.assertTrue(parse(type="register", client="alice", trace=True)["trace"])

    def test_callOnlyTypes(self):
        for kind in ("ringing", "hangup", "hold", "unhold"):
            self.assertEqual(parse(type=kind, call="c-1@host"), {"type": kind, "call": "c-1@host"})

    def test_accept(self):
        self.assertEqual(parse(type="accept", call="c1", sdp="v=0\r\n"),
                         {"type": "accept", "call": "c1", "sdp": "v=0\r\n"})

    def test_reject(self):
        self.assertEqual(parse(type="reject", call="c1", reason="busy"),
                         {"type": "reject", "call": "c1", "reason": "busy"})

    def test_rejectDefaultReason(self):
        self.assertEqual(parse(type="reject", call="c1")["reason"], "decline")

    def test_dtmf(self):
        self.assertEqual(parse(type="dtmf", call="c1", digits="0123456789*#ABCD"),
                         {"type": "dtmf", "call": "c1", "digits": "0123456789*#ABCD"})

    def test_call(self):
        self.assertEqual(
            parse(type="call", to="sip:bob@example.com", sdp="v=0", ref="tab1"),
            {"type": "call", "to": "sip:bob@example.com", "sdp": "v=0", "ref": "tab1"},
        )

    def test_callWithoutRef(self):
        self.assertEqual(parse(type="call", to="+4930123", sdp="v=0"),
                         {"type": "call", "to": "+4930123", "sdp": "v=0"})

    def test_unknownFieldsDropped(self):
        self.assertEqual(parse(type="hangup", call="c1", evil={"x": 1}),
                         {"type": "hangup", "call": "c1"})

    def test_bytes(self):
        self.assertEqual(parseClientMessage(b'{"type":"hangup","call":"c1"}'),
                         {"type": "hangup", "call": "c1"})

    def test_hangupCause(self):
        """A hangup may say why: a SIP status 400-699 and words (docs/signalling.rst)."""
        self.assertEqual(parse(type="hangup", call="c1", cause=488, reason="no ICE"),
                         {"type": "hangup", "call": "c1", "cause": 488, "reason": "no ICE"})
        self.assertEqual(parse(type="hangup", call="c1", cause=None, reason=None),
                         {"type": "hangup", "call": "c1"})

    def test_types(self):
        self.assertEqual(CLIENT_MESSAGE_TYPES, {"register", "ringing", "accept", "reject", "message",
                                                "hangup", "dtmf", "hold", "unhold", "call",
                                                "resume", "transfer"})


class BadMessageTests(SynchronousTestCase):
    """Malformed messages raise L{MessageError} naming the field."""

    def assertField(self, text, field, call=None):
        e = self.assertRaises(MessageError, parseClientMessage, text)
        self.assertEqual(e.field, field)
        self.assertEqual(e.code, 400)
        self.assertEqual(e.call, call)
        self.assertTrue(e.message)
        return e

    def test_hangupBadCause(self):
        for cause in ("488", 200, 700, True, 488.5):
            self.assertField(json.dumps({"type": "hangup", "call": "c1", "cause": cause}),
                             "cause", "c1")

    def test_hangupBadReason(self):
        for reason in (5, "", "a\nb", "x" * 257):
            self.assertField(json.dumps({"type": "hangup", "call": "c1", "reason": reason}),
                             "reason", "c1")

    def test_notJSON(self):
        self.assertField("{nope", "type")

    def test_notObject(self):
        for text in ("[]", "1", '"register"', "null"):
            self.assertField(text, "type")

    def test_nanRejected(self):
        self.assertField('{"type":"hangup","call":NaN}', "type")

    def test_badUTF8(self):
        self.assertField(b'{"type":"\xff"}', "type")

    def test_loneSurrogate(self):
        self.assertField('{"type":"hangup","call":"\ud800"}', "type")

    def test_notText(self):
        self.assertField(42, "type")

    def test_missingType(self):
        self.assertField('{"call":"c1"}', "type")

    def test_typeNotString(self):
        self.assertField('{"type":5}', "type")

    def test_unknownType(self):
        e = self.assertField('{"type":"explode"}', "type")
        self.assertIn("explode", e.message)

    def test_tooBig(self):
        sdp = "a" * MAX_MESSAGE_SIZE
        self.assertField(json.dumps({"type": "accept", "call": "c1", "sdp": sdp}), "type")

    def test_tooBigCountsOctets(self):
        """The size limit counts UTF-8 octets, for C{str} as for C{bytes}."""
        text = '{"type":"hangup","call":"c1","reason":"' + "\u00e9" * 10 + '"}'
        limit = len(text.encode("utf-8")) - 1
        for payload in (text, text.encode("utf-8"), bytearray(text.encode("utf-8")),
                        memoryview(text.encode("utf-8"))):
            e = self.assertRaises(MessageError, parseClientMessage, payload, limit)
            self.assertIn("larger than", e.message)
            self.assertEqual(parseClientMessage(payload, limit + 1)["reason"], "\u00e9" * 10)

    def test_byteOrderMark(self):
        """A leading byte order mark is not JSON (as C{json.loads} has it)."""
        self.assertField('\ufeff{"type":"hangup","call":"c1"}', "type")
        self.assertField(b'\xef\xbb\xbf{"type":"hangup","call":"c1"}', "type")

    def test_deepNesting(self):
        self.assertField('{"type":"hangup","x":' + "[" * 100000 + "]" * 100000 + "}", "type")

    def test_missingCall(self):
        self.assertField('{"type":"hangup"}', "call")

    def test_callNotString(self):
        self.assertField('{"type":"hangup","call":12}', "call")

    def test_callEmpty(self):
        self.assertField('{"type":"hangup","call":""}', "call")

    def test_callWithSpace(self):
        self.assertField('{"type":"hangup","call":"a b"}', "call")

    def test_callTooLong(self):
        self.assertField(json.dumps({"type": "hangup", "call": "x" * 257}), "call")

    def test_acceptMissingSdp(self):
        self.assertField('{"type":"accept","call":"c1"}', "sdp", call="c1")

    def test_acceptSdpNotString(self):
        self.assertField('{"type":"accept","call":"c1","sdp":{}}', "sdp", call="c1")

    def test_acceptSdpNul(self):
        self.assertField('{"type":"accept","call":"c1","sdp":"v=0\\u0000"}', "sdp", call="c1")

    def test_rejectBadReason(self):
        self.assertField('{"type":"reject","call":"c1","reason":"maybe"}', "reason", call="c1")

    def test_dtmfBadDigits(self):
        for digits in ("12x", "", "a", 12, "1" * 33):
            self.assertField(json.dumps({"type": "dtmf", "call": "c1", "digits": digits}),
                             "digits", call="c1")

    def test_dtmfMissingDigits(self):
        self.assertField('{"type":"dtmf","call":"c1"}', "digits", call="c1")

    def test_registerMissingClient(self):
        self.assertField('{"type":"register"}', "client")

    def test_registerBadClient(self):
        for name in ("", "a b", "x" * 65, "é", "a/b", 7):
            self.assertField(json.dumps({"type": "register", "client": name}), "client")

    def test_registerBadToken(self):
        self.assertField('{"type":"register","client":"a","token":5}', "token")
        self.assertField('{"type":"register","client":"a","token":"a\\nb"}', "token")

    def test_registerBadTrace(self):
        self.assertField('{"type":"register","client":"a","trace":"yes"}', "trace")

    def test_callBadTo(self):
        self.assertField('{"type":"call","sdp":"v=0"}', "to")
        self.assertField('{"type":"call","to":"a b","sdp":"v=0"}', "to")

    def test_callMissingSdp(self):
        self.assertField('{"type":"call","to":"100"}', "sdp")

    def test_callBadRef(self):
        self.assertField('{"type":"call","to":"100","sdp":"v=0","ref":[1]}', "ref")


class ClientNameTests(SynchronousTestCase):
    def test_names(self):
        self.assertTrue(isValidClientName("alice"))
        self.assertTrue(isValidClientName("x" * 64))
        self.assertFalse(isValidClientName("x" * 65))
        self.assertFalse(isValidClientName(""))
        self.assertFalse(isValidClientName(None))
        self.assertFalse(isValidClientName("a:b"))
