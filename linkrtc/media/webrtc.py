# -*- test-case-name: linkrtc.media.test.test_bridge -*-
"""
The WebRTC leg: a thin wrapper around aiortc's C{RTCPeerConnection}.

This module holds the one adapter between Twisted and asyncio (L{aio},
L{drive}); every other module calls aiortc coroutines through it. Twisted
must run on the asyncio reactor (C{--reactor=asyncio}).

Traps handled here (see FIELD-NOTES.md):
 - aiortc uses Google's STUN server unless C{iceServers} is given: we
   always pass the configured list, possibly empty;
 - aioice leaves 127.0.0.1 out of host candidates: the C{iceAddresses}
   setting names the addresses to gather on, applied per connection; when
   it is empty and loopback is the only address there is (a laptop
   offline, a namespace made with C{unshare --net}), ICE offers 127.0.0.1
   by itself rather than nothing (L{hostAddresses});
 - signalling is non-trickle: C{setLocalDescription} returns after
   gathering, so the SDP carries every candidate.
"""

import asyncio

from aioice.ice import StunProtocol, TransportPolicy
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from linkrtc.error import MediaError
from linkrtc.media.video import ParkedVideoTrack

log = Logger()

#: WebRTC-side codecs, by name, in aiortc's MIME spelling. Browsers have
#: Opus, PCMU and PCMA (RFC 7874 §3); Chrome has G.722 too, Firefox not.
WEBRTC_CODECS = {"OPUS": "audio/opus", "PCMU": "audio/PCMU", "PCMA": "audio/PCMA",
                 "G722": "audio/G722"}

#: RTP clock rate (Hz) of each WebRTC-side codec.
WEBRTC_CLOCK_RATES = {"OPUS": 48000, "PCMU": 8000, "PCMA": 8000, "G722": 8000}


def browserCodecOrder(sipCodec=None):
    """
    The codecs we offer the browser (or accept from its offer), best first:
    the SIP leg's codec first when the browser may have it (both legs on
    one codec: the packet relay), then Opus, PCMU, PCMA. G.722 is offered
    only when it is the SIP codec (Chrome has it; a browser without it
    takes the next one and the bridge transcodes).

    @param sipCodec: the SIP leg's codec name (upper case) or C{None}.
    @return: C{list} of names from L{WEBRTC_CODECS}.
    """
    names = ["OPUS", "PCMU", "PCMA"]
    if sipCodec in WEBRTC_CODECS:
        if sipCodec in names:
            names.remove(sipCodec)
        names.insert(0, sipCodec)
    return names


def loopOf(reactor):
    """@return: the asyncio loop under C{reactor} (the running loop otherwise)."""
    loop = getattr(reactor, "_asyncioEventloop", None)
    if loop is None:
        loop = asyncio.get_event_loop()
    return loop


def aio(coro, loop=None):
    """
    Run an asyncio coroutine (aiortc's) and get a L{Deferred} for its result.

    Never C{await} aiortc coroutines directly from Twisted-driven code:
    they await asyncio futures, which a Deferred-driven coroutine cannot.
    """
    return Deferred.fromFuture(asyncio.ensure_future(coro, loop=loop))


def drive(coro):
    """
    Run a coroutine eagerly from synchronous code (a datagram callback)
    without making a Task: aiortc's C{_send_rtp} never suspends, so one
    C{send(None)} normally finishes it. If it does suspend, it is resumed
    when the awaited future completes. Errors are logged, never raised.
    """

    def step(_=None):
        try:
            future = coro.send(None)
        except StopIteration:
            return
        except ConnectionError:
            return
        except Exception:
            log.failure("RTP send failed")
            return
        if future is not None and hasattr(future, "add_done_callback"):
            future._asyncio_future_blocking = False
            future.add_done_callback(step)
        else:
            asyncio.get_event_loop().call_soon(step)

    step()


#: aioice's plain C{StunProtocol.send_data}: C{transport.sendto(data, addr)}.
_PLAIN_SEND_DATA = getattr(StunProtocol, "send_data", None)


def iceConnection(dtls):
    """
    @param dtls: an aiortc C{RTCDtlsTransport}.
    @return: the aioice C{Connection} under it (C{RTCIceTransport._connection}),
        or C{None} if aiortc or aioice no longer have the names the relay's
        hot path uses (C{_nominated}, C{data_received}).
    """
    connection = getattr(getattr(dtls, "transport", None), "_connection", None)
    if (connection is None or not isinstance(getattr(connection, "_nominated", None), dict)
            or not callable(getattr(connection, "data_received", None))):
        return None
    return connection


def plainStunProtocol(protocol):
    """
    @return: C{True} if C{protocol} is aioice's C{StunProtocol} with its own
        C{datagram_received} and C{send_data} (not TURN's, not replaced).
    """
    return (isinstance(protocol, StunProtocol)
            and type(protocol).datagram_received is StunProtocol.datagram_received
            and "datagram_received" not in vars(protocol)
            and type(protocol).send_data is _PLAIN_SEND_DATA)


def pairSender(pair):
    """
    @param pair: an aioice C{CandidatePair} (the nominated one).
    @return: a callable sending one datagram on C{pair} now, as
        C{Connection.sendto} does, without its coroutines: for a plain
        C{StunProtocol} its datagram transport's C{sendto}; for any other
        protocol (TURN) its C{send_data} coroutine, L{drive}n.
    """
    protocol = pair.protocol
    addr = pair.remote_addr
    if type(protocol).send_data is _PLAIN_SEND_DATA:
        sendto = protocol.transport.sendto
        return lambda data: sendto(data, addr)
    return lambda data: drive(protocol.send_data(data, addr))


def iceServerObjects(iceServers):
    """
    @param iceServers: sequence of URLs (C{"stun:host:3478"}) or C{dict}s
        with C{urls}, C{username}, C{credential} (TURN).
    @return: C{list} of L{RTCIceServer}.
    """
    result = []
    for server in iceServers or ():
        if isinstance(server, str):
            result.append(RTCIceServer(urls=server))
        else:
            result.append(RTCIceServer(urls=server["urls"], username=server.get("username"),
                                       credential=server.get("credential")))
    return result


#: The host address ICE offers when there is no other (FIELD-NOTES
#: "Loopback-only ICE").
LOOPBACK = "127.0.0.1"


def hostAddresses(configured, found):
    """
    Choose the host addresses one ICE agent gathers candidates on.

    @param configured: the C{iceAddresses} setting (C{--ice-address}),
        a sequence of IP literals, possibly empty.
    @param found: the addresses aioice found on the machine's interfaces
        (C{aioice.ice.get_host_addresses}: every one but loopback).
    @return: C{list} of C{str}: C{configured} when given; otherwise
        C{found}, or C{[LOOPBACK]} when C{found} is empty, so that a
        machine whose only address is loopback still offers a candidate
        (aioice would offer none and the call would stay silent).
    """
    if configured:
        return list(configured)
    if found:
        return list(found)
    return [LOOPBACK]


def restrictHostAddresses(transceiver, addresses):
    """
    Make this connection's ICE agent gather host candidates on the
    addresses L{hostAddresses} chooses: C{addresses} (e.g.
    C{["127.0.0.1"]}) when given, otherwise aioice's list, or loopback
    alone when that list is empty. Per connection: other calls are not
    affected. Under the C{relay} transport policy aioice asks for no host
    address on purpose; that is left alone.

    @param addresses: a sequence of IP literals, or C{None}/empty for
        aioice's choice.
    """
    connection = transceiver.sender.transport.transport.iceGatherer._connection
    original = connection.get_component_candidates
    fixed = list(addresses or ())

    def gatherOn(component, addresses=(), timeout=5):
        if getattr(connection, "_transport_policy", TransportPolicy.ALL) == TransportPolicy.ALL:
            chosen = hostAddresses(fixed, addresses)
            if not fixed and not addresses:
                log.info("ICE: no address but loopback; offering {address} only",
                         address=LOOPBACK)
        else:
            chosen = list(addresses)
        return original(component=component, addresses=chosen, timeout=timeout)

    connection.get_component_candidates = gatherOn


def codecCapabilities(names):
    """
    @param names: WebRTC codec names in order of preference (C{"PCMU"}, C{"OPUS"}).
    @return: aiortc codec capabilities for C{setCodecPreferences}.
    """
    available = RTCRtpSender.getCapabilities("audio").codecs
    result = []
    for name in names:
        mime = WEBRTC_CODECS[name].lower()
        result += [c for c in available if c.mimeType.lower() == mime]
    return result


#: The H.264 profile we offer browsers (Constrained Baseline 3.1,
#: packetization mode 1: L{linkrtc.media.sdp.H264_FMTP}).
H264_PROFILE = "42e01f"


def videoCapabilities(names):
    """
    @param names: video codec names in order of preference (C{"VP8"},
        C{"H264"}).
    @return: aiortc's codec capabilities for them, for
        C{setCodecPreferences}: VP8, and H.264 in packetization mode 1
        with profile-level-id L{H264_PROFILE} only; never RTX (the browser
        then retransmits a NACKed packet as it was, which the relay can
        pass on).
    """
    available = RTCRtpSender.getCapabilities("video").codecs
    result = []
    for name in names:
        for c in available:
            if c.mimeType.lower() != "video/" + name.lower():
                continue
            if name.upper() == "H264" and (
                    c.parameters.get("packetization-mode") != "1"
                    or c.parameters.get("profile-level-id", "").lower() != H264_PROFILE):
                continue
            result.append(c)
    return result


async def closePeerConnection(pc):
    """
    Close C{pc} and everything it runs. aioice may start its consent
    task after C{close()} when ICE had just completed (its connect() had
    not resumed yet); that task is cancelled here too.
    """
    await pc.close()
    for transceiver in pc.getTransceivers():
        ice = transceiver.sender.transport.transport
        started = getattr(ice, "_RTCIceTransport__start", None)
        if started is not None and not started.is_set():
            try:
                await asyncio.wait_for(started.wait(), 2.0)
            except asyncio.TimeoutError:
                log.warn("ICE connect() did not end after close")
        task = getattr(getattr(ice, "_connection", None), "_query_consent_task", None)
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


class WebRTCLeg:
    """
    One call's peer connection with a sendrecv audio transceiver and,
    when C{videoCodecNames} are given, a sendrecv video transceiver
    bundled with it (max-bundle: one ICE/DTLS transport for both) whose
    track is a L{ParkedVideoTrack} (the video relay sends its packets).

    @ivar pc: the C{RTCPeerConnection}.
    @ivar transceiver: its audio transceiver.
    @ivar videoTransceiver: its video transceiver, or C{None}.
    """

    def __init__(self, reactor, track, codecNames, iceServers=(), iceAddresses=None,
                 videoCodecNames=()):
        self._loop = loopOf(reactor)
        configuration = RTCConfiguration(iceServers=iceServerObjects(iceServers))
        if videoCodecNames:
            configuration.bundlePolicy = RTCBundlePolicy.MAX_BUNDLE
        self.pc = RTCPeerConnection(configuration)
        self.transceiver = self.pc.addTransceiver(track, direction="sendrecv")
        self.transceiver.setCodecPreferences(codecCapabilities(codecNames))
        self.videoTransceiver = None
        if videoCodecNames:
            self.videoTransceiver = self.pc.addTransceiver(ParkedVideoTrack(), direction="sendrecv")
            self.videoTransceiver.setCodecPreferences(videoCapabilities(videoCodecNames))
        restrictHostAddresses(self.transceiver, iceAddresses)
        self.closed = False

    @property
    def dtls(self):
        """The C{RTCDtlsTransport} carrying the audio."""
        return self.transceiver.sender.transport

    def _aio(self, coro):
        return aio(coro, loop=self._loop)

    def createOffer(self):
        """@return: L{Deferred} firing with our offer SDP (C{str}), candidates included."""

        async def offer():
            await self.pc.setLocalDescription(await self.pc.createOffer())
            return self.pc.localDescription.sdp

        return self._aio(offer())

    def setRemoteAnswer(self, sdp):
        """
        Apply the client's answer.

        @return: L{Deferred}; fails with L{MediaError} if aiortc rejects it.
        """

        async def apply():
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except Exception as e:  # aiortc raises ValueError / InvalidStateError / ...
                raise MediaError("client SDP not acceptable: %s" % (e,)) from e

        return self._aio(apply())

    def answerOffer(self, sdp):
        """
        Answer the client's offer (outbound calls: the client offers).

        @return: L{Deferred} firing with our answer SDP (C{str}),
            candidates included; fails with L{MediaError} if aiortc rejects
            the offer.
        """

        async def answer():
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                self._declineOthers()
                await self.pc.setLocalDescription(await self.pc.createAnswer())
            except Exception as e:  # aiortc raises ValueError / InvalidStateError / ...
                raise MediaError("client offer not acceptable: %s" % (e,)) from e
            return self.pc.localDescription.sdp

        return self._aio(answer())

    def _declineOthers(self):
        """
        Streams of the client's offer that aiortc made transceivers for
        (video we do not relay, a second audio) are answered C{inactive}:
        aiortc would otherwise decode what the browser sends on them.
        """
        for transceiver in self.pc.getTransceivers():
            if transceiver is not self.transceiver and transceiver is not self.videoTransceiver:
                transceiver.direction = "inactive"

    def negotiatedCodec(self):
        """
        @return: C{(NAME, payloadType)} of the codec aiortc sends with
            (upper-case name), or C{None} before negotiation.
        """
        codecs = getattr(self.transceiver, "_codecs", None) or []
        for codec in codecs:
            name = codec.mimeType.split("/")[1].upper()
            if name in WEBRTC_CODECS:
                return name, codec.payloadType
        return None

    def negotiatedVideoCodec(self):
        """
        @return: C{(NAME, payloadType)} of the video codec negotiated with
            the browser (C{"VP8"} or C{"H264"}), or C{None} (no video
            transceiver, or before negotiation).
        """
        transceiver = self.videoTransceiver
        for codec in (getattr(transceiver, "_codecs", None) or []) if transceiver else []:
            name = codec.mimeType.split("/")[1].upper()
            if name in ("VP8", "H264"):
                return name, codec.payloadType
        return None

    @property
    def videoSSRC(self):
        """The SSRC aiortc announced for our video (C{RTCRtpSender._ssrc}), or C{None}."""
        transceiver = self.videoTransceiver
        return transceiver.sender._ssrc if transceiver is not None else None

    def close(self):
        """@return: L{Deferred} firing when the connection, its sockets and tasks are gone."""
        if self.closed:
            return succeed(None)
        self.closed = True
        return self._aio(closePeerConnection(self.pc))
