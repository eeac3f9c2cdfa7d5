# -*- test-case-name: linkrtc.media.test.test_sdes -*-
"""
SDES-SRTP on the SIP side of the media bridge: keys exchanged in the SDP
(RFC 4568 C{a=crypto} on C{RTP/SAVP} m= lines) and RTP/RTCP protected
with libsrtp (C{pylibsrtp}, RFC 3711): no cryptography is written here.

 - L{parseCrypto} / L{formatCrypto}: the attribute (RFC 4568 §4, §6.1;
   the suites of §6.2: C{AES_CM_128_HMAC_SHA1_80}, and C{_32});
 - L{chooseAudio}: the SIP audio stream to use in an offer or answer, plain
   (C{RTP/AVP}) or secure (C{RTP/SAVP} with a usable C{a=crypto});
 - L{SDES}: one call's keys and offer/answer state (tag echo, §6.1);
 - L{SRTPContext}: the two libsrtp sessions (send with our key, receive
   with the far end's);
 - L{SRTPSession}, L{SRTCPSink}: the bridge's L{RTPSession} and RTCP sink
   with protect on send and unprotect on receive; a packet that fails
   authentication or the replay check is dropped and counted
   (L{linkrtc.metrics.SRTP_AUTH_FAILURES}, logged once per call);
 - L{TrunkPolicy}: the trunks' C{srtp} option (C{off}, C{optional},
   C{required}) for incoming calls.
"""

import base64
import binascii
import ipaddress
import os
import re
from dataclasses import dataclass

import pylibsrtp
from twisted.logger import Logger

from linkrtc import metrics
from linkrtc.error import LinkRTCError, MediaError
from linkrtc.media.rtp import RTCPSink, RTPSession

log = Logger()

#: The suite LinkRTC offers (RFC 4568 §6.2.1).
SUITE = "AES_CM_128_HMAC_SHA1_80"

#: Suites taken in offers and answers: name -> libsrtp profile (RFC 4568
#: §6.2.1, §6.2.2; both a 128-bit AES key and a 112-bit salt).
SUITES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}

#: Octets of the master key and salt together (16 + 14, RFC 4568 §6.2.1).
KEY_LENGTH = 30

#: The SRTP profiles (RFC 3711) an m= line may carry SDES keys on.
SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")
PLAIN_PROTOS = ("RTP/AVP", "RTP/AVPF")

#: The trunk option's values (docs/trunks.rst).
SRTP_MODES = ("off", "optional", "required")

#: Session parameters (RFC 4568 §6.3) that change nothing for us: a window
#: size hint. Any other one makes the attribute unusable.
_HARMLESS_PARAMS = ("WSH=",)

_TAG = re.compile(r"[0-9]{1,9}\Z")
_LIFETIME = re.compile(r"(?:2\^)?[0-9]+\Z")
_MKI = re.compile(r"[0-9]+:[0-9]{1,3}\Z")


@dataclass(frozen=True)
class CryptoAttribute:
    """
    One usable C{a=crypto} attribute (RFC 4568 §4).

    @ivar tag: the tag, C{int} (echoed in the answer, §6.1).
    @ivar suite: the crypto-suite name, one of L{SUITES}.
    @ivar key: the master key and salt, C{bytes} of L{KEY_LENGTH}.
    """

    tag: int
    suite: str
    key: bytes

    def line(self):
        """@return: the attribute's value (after C{a=crypto:}), C{str}."""
        return formatCrypto(self.tag, self.suite, self.key)


def parseCrypto(value):
    """
    Parse the value of an C{a=crypto} attribute:
    C{<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:length] [params]}.

    @param value: the text after C{a=crypto:}, C{str}.
    @return: a L{CryptoAttribute}.
    @raise ValueError: when the attribute is malformed or not usable: a
        suite not in L{SUITES}, a key method other than C{inline}, more
        than one key, a key that is not base64 of exactly L{KEY_LENGTH}
        octets, a bad lifetime, an MKI (libsrtp is used without MKI
        here), or a session parameter other than C{WSH} (§6.3).
    """
    parts = value.split()
    if len(parts) < 3:
        raise ValueError("crypto attribute needs a tag, a suite and key parameters")
    tagText, suite, keyParams, params = parts[0], parts[1], parts[2], parts[3:]
    if not _TAG.match(tagText):
        raise ValueError("bad crypto tag %r" % (tagText[:20],))
    if suite not in SUITES:
        raise ValueError("unsupported crypto suite %r" % (suite[:40],))
    if ";" in keyParams:
        raise ValueError("more than one key (MKI keys are not supported)")
    method, _, info = keyParams.partition(":")
    if method != "inline":
        raise ValueError("unsupported key method %r" % (method[:20],))
    fields = info.split("|")
    if len(fields) > 3:
        raise ValueError("bad key parameters")
    try:
        key = base64.b64decode(fields[0], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("crypto key is not base64") from None
    if len(key) != KEY_LENGTH:
        raise ValueError("crypto key and salt are %d octets, not %d" % (len(key), KEY_LENGTH))
    rest = fields[1:]
    if rest and _LIFETIME.match(rest[0]):
        rest = rest[1:]
    if rest:
        if _MKI.match(rest[0]):
            raise ValueError("MKI is not supported")
        raise ValueError("bad lifetime or MKI %r" % (rest[0][:20],))
    for param in params:
        if not param.startswith(_HARMLESS_PARAMS):
            raise ValueError("unsupported session parameter %r" % (param[:30],))
    return CryptoAttribute(int(tagText), suite, key)


def formatCrypto(tag, suite, key):
    """
    @param tag: C{int}, 0..999999999.
    @param suite: one of L{SUITES}.
    @param key: master key and salt, C{bytes} of L{KEY_LENGTH}.
    @return: the C{a=crypto} value, C{str}: C{"1 AES_CM_128_HMAC_SHA1_80 inline:..."}.
    @raise ValueError: for a key of another length or an unknown suite.
    """
    if len(key) != KEY_LENGTH:
        raise ValueError("an SRTP key and salt are %d octets" % (KEY_LENGTH,))
    if suite not in SUITES:
        raise ValueError("unsupported crypto suite %r" % (suite,))
    return "%d %s inline:%s" % (tag, suite, base64.b64encode(key).decode("ascii"))


def usableCrypto(media):
    """
    @param media: a L{linkrtc.media.sdp.MediaDescription}.
    @return: the first of its C{a=crypto} attributes that L{parseCrypto}
        takes (L{CryptoAttribute}), or C{None}; the others are ignored.
    """
    for value in media.crypto:
        try:
            return parseCrypto(value)
        except ValueError as e:
            log.debug("a=crypto ignored: {e}", e=e)
    return None


def chooseAudio(desc, required=False):
    """
    The SIP audio stream to use: the first audio m= line (not port 0)
    that is C{RTP/AVP(F)} (unless C{required}) or C{RTP/SAVP(F)} with a
    usable C{a=crypto} (RFC 4568 §6.1; plain and secure offers of one
    stream follow the offer's order).

    @param desc: a L{linkrtc.media.sdp.SessionDescription}.
    @param required: C{True} when only SRTP will do.
    @return: C{(index, media, crypto)}: crypto is a L{CryptoAttribute}
        for a secure stream, C{None} for a plain one.
    @raise MediaError: when no stream qualifies (488), or it has no
        connection address.
    """
    secureSeen = False
    for i, m in enumerate(desc.media):
        if m.media != "audio" or m.port == 0:
            continue
        proto = m.proto.upper()
        crypto = None
        if proto in SECURE_PROTOS:
            secureSeen = True
            crypto = usableCrypto(m)
            if crypto is None:
                continue
        elif proto not in PLAIN_PROTOS or required:
            continue
        if m.address is None:
            raise MediaError("SDP audio stream has no connection address")
        return i, m, crypto
    if required:
        raise MediaError("SRTP required: no RTP/SAVP audio stream with a usable a=crypto (%s)"
                         % (", ".join(SUITES),))
    if secureSeen:
        raise MediaError("SDP has no usable audio stream (RTP/SAVP without a usable "
                         "a=crypto: we take %s)" % (", ".join(SUITES),))
    raise MediaError("SDP has no usable RTP/AVP audio stream")


class SDES:
    """
    One call's SDES state: our key (made with C{os.urandom}), the tag and
    suite in use, and the far end's key once known.

    Incoming offer: L{takeOffer} with the chosen attribute; our answer
    echoes its tag and suite with our key (RFC 4568 §6.1). Our offer: one
    attribute, tag 1, L{SUITE}; L{takeAnswer} checks the answer's echo.

    @ivar proto: the m= line's profile we write (C{"RTP/SAVP"}, or the
        offer's C{RTP/SAVPF}).
    @ivar remote: the far end's L{CryptoAttribute}, or C{None}.
    """

    def __init__(self, key=None, tag=1, suite=SUITE):
        self.key = os.urandom(KEY_LENGTH) if key is None else key
        self.tag = tag
        self.suite = suite
        self.proto = "RTP/SAVP"
        self.remote = None

    def line(self):
        """@return: our C{a=crypto} value (C{str})."""
        return formatCrypto(self.tag, self.suite, self.key)

    def takeOffer(self, media, crypto):
        """
        The far end offered C{crypto} on C{media}: answer with its tag and
        suite. @return: C{True} if the far end's key changed.
        """
        self.tag, self.suite = crypto.tag, crypto.suite
        self.proto = "RTP/SAVPF" if media.proto.upper() == "RTP/SAVPF" else "RTP/SAVP"
        changed = self.remote != crypto
        self.remote = crypto
        return changed

    def takeAnswer(self, media):
        """
        The answer's stream to our offer: it must echo our tag and suite
        (RFC 4568 §6.1).

        @return: C{True} if the far end's key changed.
        @raise MediaError: when it does not carry such an attribute.
        """
        if media.proto.upper() in SECURE_PROTOS:
            for value in media.crypto:
                try:
                    crypto = parseCrypto(value)
                except ValueError:
                    continue
                if crypto.tag == self.tag and crypto.suite == self.suite:
                    changed = self.remote != crypto
                    self.remote = crypto
                    return changed
        raise MediaError("SRTP: the answer has no a=crypto with our tag %d and %s"
                         % (self.tag, self.suite))

    def context(self, previous=None):
        """
        @param previous: the L{SRTPContext} in use, or C{None}: when it has
            our key and suite, its sending session is kept (a far end that
            changes its key must not reset our rollover counter, RFC 3711
            §3.3.1).
        @return: an L{SRTPContext} for our key and the far end's.
        """
        if self.remote is None:
            raise MediaError("SRTP: the far end's key is not known")
        sender = None
        if previous is not None and previous.keys[0] == self.key and previous.keys[2] == self.suite:
            sender = previous.sender
        return SRTPContext(self.key, self.remote.key, self.suite, sender)


class SRTPContext:
    """
    The libsrtp sessions of one SIP leg: outbound with our key, inbound
    with the far end's (any SSRC, libsrtp's replay window).

    @param localKey: our master key and salt (C{bytes}, 30).
    @param remoteKey: the far end's (C{bytes}, 30).
    @param suite: one of L{SUITES}.
    @param sender: C{None}, or the libsrtp session of an earlier context
        with the same C{localKey} and C{suite}, to go on sending with.

    @ivar keys: C{(localKey, remoteKey, suite)}.
    @ivar sender: the sending libsrtp session.
    """

    def __init__(self, localKey, remoteKey, suite=SUITE, sender=None):
        profile = SUITES[suite]
        self.keys = (localKey, remoteKey, suite)
        if sender is None:
            sender = pylibsrtp.Session(pylibsrtp.Policy(
                key=localKey, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
        self.sender = self._tx = sender
        self._rx = pylibsrtp.Session(pylibsrtp.Policy(
            key=remoteKey, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile))

    def protect(self, packet):
        """@return: the SRTP packet (C{bytes}) for an RTP packet."""
        return self._tx.protect(packet)

    def protectRTCP(self, packet):
        """@return: the SRTCP packet (C{bytes}) for an RTCP packet."""
        return self._tx.protect_rtcp(packet)

    def unprotect(self, packet):
        """
        @return: the RTP packet, C{bytes}.
        @raise pylibsrtp.Error: authentication or replay check failed.
        """
        return self._rx.unprotect(packet)

    def unprotectRTCP(self, packet):
        """
        @return: the RTCP packet, C{bytes}.
        @raise pylibsrtp.Error: authentication or replay check failed.
        """
        return self._rx.unprotect_rtcp(packet)


class SRTPFailures:
    """
    Counts one call's SRTP/SRTCP packets that failed authentication or
    the replay check (also in L{metrics.SRTP_AUTH_FAILURES}); the first is
    logged, the others only counted.
    """

    def __init__(self, callId=None):
        self.callId = callId
        self.count = 0

    def failed(self, kind, addr, error):
        """
        One packet failed: count it (and log the call's first).

        @param kind: C{"SRTP"} or C{"SRTCP"}.
        @param addr: its source C{(host, port)}.
        @param error: libsrtp's L{pylibsrtp.Error}.
        """
        if not self.count:
            log.info("call {callId}: {kind} packet from {addr} dropped ({error}); further "
                     "failures are only counted", callId=self.callId, kind=kind, addr=addr,
                     error=error)
        self.count += 1
        metrics.SRTP_AUTH_FAILURES.inc()


class SRTPSession(RTPSession):
    """
    An L{RTPSession} whose packets are SRTP (RFC 3711): unprotected before
    strict RTP and everything else looks at them, protected after all the
    rest on the way out. Until L{setContext} (the far end's key is known)
    nothing is sent and what arrives is dropped; after L{setPlain} (an
    C{optional} trunk answered plain RTP) packets pass as they are.

    @param failures: the call's L{SRTPFailures}.
    """

    def __init__(self, clock, failures, **kwargs):
        RTPSession.__init__(self, clock, **kwargs)
        self.failures = failures
        self.context = None
        self.plain = False

    def setContext(self, context):
        """Use the L{SRTPContext} C{context} from now on."""
        self.context = context
        self.plain = False

    def setPlain(self):
        """Carry plain RTP from now on."""
        self.context = None
        self.plain = True

    def datagramReceived(self, data, addr):
        context = self.context
        if context is not None:
            try:
                data = context.unprotect(data)
            except pylibsrtp.Error as e:
                self.failures.failed("SRTP", addr, e)
                return
        elif not self.plain:
            return
        RTPSession.datagramReceived(self, data, addr)

    def _write(self, packet):
        context = self.context
        if context is None:
            if self.plain:
                RTPSession._write(self, packet)
            return
        if self.transport is None or not self.sending or self.destination is None:
            return
        try:
            protected = context.protect(packet)
        except pylibsrtp.Error as e:
            log.debug("SRTP protect failed: {e}", e=e)
            return
        sent = self.packetsSent
        RTPSession._write(self, protected)
        if self.packetsSent != sent:
            self.bytesSent -= len(protected) - len(packet)  # count the payload only


    def stats(self):
        """@return: L{RTPSession.stats} and C{srtpFailures} (SRTP and SRTCP packets dropped)."""
        figures = RTPSession.stats(self)
        figures["srtpFailures"] = self.failures.count
        return figures


class SRTCPSink(RTCPSink):
    """
    The RTCP port of an SRTP call: SRTCP packets are unprotected (and so
    authenticated) with the call's context; failures are dropped and
    counted like SRTP's. LinkRTC sends no RTCP on the SIP side.

    @param session: the call's L{SRTPSession}.
    """

    def __init__(self, session):
        self.session = session

    def datagramReceived(self, data, addr):
        session = self.session
        if session.context is not None:
            try:
                session.context.unprotectRTCP(data)
            except pylibsrtp.Error as e:
                session.failures.failed("SRTCP", addr, e)
                return
        elif not session.plain:
            return
        self.packets += 1


def _hostKey(host):
    """An IP literal in one spelling (C{::1} and C{0:0::1} alike), else the lower-case name."""
    host = (host or "").strip("[]").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


class TrunkPolicy:
    """
    The trunks' C{srtp} option for incoming calls: a call comes from a
    trunk when its INVITE's source address is the host of the trunk's
    C{proxy} or C{registrar} (an IP address, or the same name), or its
    Request-URI user is one of the trunk's DIDs (C{route}) or its
    C{username}. A call from a trunk with C{srtp = "required"} must offer
    SRTP.

    @param trunks: L{linkrtc.config.Trunk}s.
    """

    def __init__(self, trunks=()):
        self._hosts = {}
        self._users = {}
        for trunk in trunks:
            if getattr(trunk, "srtp", "off") != "required":
                continue
            for uri in (trunk.proxyURI, trunk.registrarURI):
                try:
                    self._hosts.setdefault(_hostKey(uri().host), trunk.name)
                except LinkRTCError:
                    continue
            for user in list(trunk.route) + ([trunk.username] if trunk.username else []):
                self._users.setdefault(user, trunk.name)

    def __bool__(self):
        return bool(self._hosts or self._users)

    def requiredBy(self, sourceHost, requestUser):
        """
        @param sourceHost: the INVITE's source address (C{str}) or C{None}.
        @param requestUser: the Request-URI's user (C{str}) or C{None}.
        @return: the name of the trunk that requires SRTP for this call,
            or C{None}.
        """
        if sourceHost is not None:
            name = self._hosts.get(_hostKey(sourceHost))
            if name is not None:
                return name
        if requestUser is not None:
            return self._users.get(requestUser)
        return None

    def requiredFor(self, listener):
        """
        @param listener: the call (L{linkrtc.call.call.Call}: its C{leg}'s
            C{source} and its C{request}'s URI), or anything else.
        @return: as L{requiredBy}.
        """
        if not self:
            return None
        source = getattr(getattr(listener, "leg", None), "source", None)
        request = getattr(listener, "request", None)
        user = getattr(getattr(request, "uri", None), "user", None)
        return self.requiredBy(getattr(source, "host", None), user)
