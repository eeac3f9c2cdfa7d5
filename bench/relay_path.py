"""
The packet relay's per-packet path, in process: N PCMU packets each way
through LinkRTC's relay objects (L{linkrtc.media.rtp.RTPSession},
L{linkrtc.media.relay.WebRTCTap} on aiortc/aioice's hook points,
L{linkrtc.media.relay.PacketRelay}) with real SRTP (pylibsrtp, AEAD
AES-256-GCM, the first profile aiortc offers), against
a ceiling: the same packets through bare pylibsrtp C{protect}/C{unprotect}
and a C{struct} header rewrite, in the same run.

No sockets and no event loop: datagrams are handed to the receiving
callbacks (Twisted's C{datagramReceived}, aioice's C{datagram_received})
and what is sent goes to a no-op C{sendto}. So this is the Python work
per packet above the kernel and the reactor; bench/media.py measures the
whole. CPU is the process's (C{time.process_time}); each side runs
C{--repeat} times, interleaved, and the best run counts.

    python bench/relay_path.py [--packets 100000] [--repeat 5]

Prints microseconds of CPU per packet (one packet relayed one way; a
call-second is 100 of them: 50 each way), the ratio to the ceiling, and
writes bench/results/relay_path.json.
"""

import argparse
import json
import os
import platform
import struct
import sys
import time

from aioice.ice import StunProtocol
from pylibsrtp import Policy, Session
from twisted.internet.task import Clock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from linkrtc.media.relay import PacketRelay, WebRTCTap  # noqa: E402
from linkrtc.media.rtp import RTPSession, buildHeader, parseRTP  # noqa: E402
from linkrtc.media.sdp import Codec  # noqa: E402

PHONE = ("127.0.0.1", 40000)
BROWSER = ("127.0.0.1", 50000)
PROFILE = Policy.SRTP_PROFILE_AEAD_AES_256_GCM
KEY_LENGTH = 32 + 12  # AES-256 key and GCM salt
PAYLOAD = b"\xff" * 160
BROWSER_SSRC = 0x1234
PHONE_SSRC = 0x5678
TAP_SSRC = 0xABCDEF
_HEADER = struct.Struct("!BBHII")


def sessions():
    """
    @return: C{(browserTx, linkrtcRx, linkrtcTx, browserRx)}: two SRTP
        directions, each a sender's and a receiver's L{Session} on one key.
    """
    up, down = os.urandom(KEY_LENGTH), os.urandom(KEY_LENGTH)

    def session(key, ssrcType):
        return Session(Policy(key=key, ssrc_type=ssrcType, srtp_profile=PROFILE))

    return (session(up, Policy.SSRC_ANY_OUTBOUND), session(up, Policy.SSRC_ANY_INBOUND),
            session(down, Policy.SSRC_ANY_OUTBOUND), session(down, Policy.SSRC_ANY_INBOUND))


class Sink:
    """A datagram transport (and socket) that keeps one datagram in 1,024 (and the last)."""

    def __init__(self):
        self.count = 0
        self.last = None
        self.samples = []
        self.socket = self

    def sendto(self, data, addr):
        self.count += 1
        self.last = data
        if not self.count & 1023:
            self.samples.append(bytes(data))

    write = sendto


class WallClock(Clock):
    """L{Clock} whose C{seconds} is the wall clock (as the reactor's): scheduled calls never run."""

    seconds = staticmethod(time.time)


# Stand-ins for aiortc's RTCDtlsTransport and aioice's Connection: just
# the names the tap uses (linkrtc/media/test/test_relay.py has the same).

class Pair:
    def __init__(self, protocol):
        self.protocol = protocol
        self.remote_addr = BROWSER


class Connection:
    def __init__(self, protocol):
        self._nominated = {1: Pair(protocol)}

    def data_received(self, data, component):
        raise AssertionError("a packet went to aiortc's queue")


class Dtls:
    def __init__(self, connection, rx, tx):
        self.transport = type("IceTransport", (), {"_connection": connection})()
        self.state = "connected"
        self._rx_srtp = rx
        self._tx_srtp = tx

    def on(self, event, listener):
        pass

    def remove_listener(self, event, listener):
        pass

    async def _handle_rtp_data(self, data, arrival_time_ms):
        raise AssertionError("a packet went to aiortc")

    async def _send_rtp(self, data):
        pass

    async def _handle_rtcp_data(self, data):
        pass


class Leg:
    def __init__(self, dtls):
        self.dtls = dtls
        self.transceiver = type("Transceiver", (), {
            "sender": type("Sender", (), {"_ssrc": TAP_SSRC})()})()


def packets(count, browserTx):
    """@return: C{(fromPhone, fromBrowser)}: C{count} RTP and C{count} SRTP packets."""
    fromPhone = [buildHeader(0, 0, i & 0xFFFF, 160 * i, PHONE_SSRC) + PAYLOAD
                 for i in range(count)]
    fromBrowser = [browserTx.protect(buildHeader(0, 0, i & 0xFFFF, 160 * i, BROWSER_SSRC) + PAYLOAD)
                   for i in range(count)]
    return fromPhone, fromBrowser


def linkrtc(fromPhone, fromBrowser, rx, tx, browserRx):
    """
    Relay both lists through LinkRTC's objects.

    @return: CPU seconds.
    """
    clock = WallClock()
    rtp = RTPSession(clock, remote=PHONE, audio=Codec("PCMU", 8000, 0),
                     event=Codec("TELEPHONE-EVENT", 8000, 101), mediaTimeout=None)
    toPhone = Sink()
    rtp.makeConnection(toPhone)
    protocol = StunProtocol.__new__(StunProtocol)  # no asyncio loop needed
    toBrowser = Sink()
    protocol.transport = toBrowser
    protocol.local_candidate = type("Candidate", (), {"component": 1})()
    tap = WebRTCTap(clock, Leg(Dtls(Connection(protocol), rx, tx)), 0, 8000)
    relay = PacketRelay(clock, rtp, tap, "PCMU")
    relay.start()
    fromSIP = rtp.datagramReceived
    fromWebRTC = protocol.datagram_received
    start = time.process_time()
    for phone, browser in zip(fromPhone, fromBrowser):
        fromSIP(phone, PHONE)
        fromWebRTC(browser, BROWSER)
    cpu = time.process_time() - start
    check(toPhone, toBrowser, browserRx, len(fromPhone), relay)
    relay.stop()
    tap.detach()
    return cpu


def check(toPhone, toBrowser, browserRx, count, relay=None):
    """Both sinks got every packet, the last ones whole and (to the browser) decryptable."""
    assert toPhone.count == count, (toPhone.count, count)
    assert toBrowser.count >= count, (toBrowser.count, count)  # + a first silence packet
    assert parseRTP(toPhone.last)[5] == PAYLOAD
    for data in toBrowser.samples + [bytes(toBrowser.last)]:  # in order: SRTP's rollover
        decrypted = parseRTP(browserRx.unprotect(data))
        assert decrypted[4] == TAP_SSRC and decrypted[5] == PAYLOAD, decrypted
    if relay is not None:
        assert relay.sipPackets == relay.webrtcPackets == count


def ceiling(fromPhone, fromBrowser, rx, tx, browserRx):
    """
    The same packets, bare: unpack the header, pack it rewritten (offsets,
    our SSRC), pylibsrtp protect or unprotect, send to a no-op.

    @return: CPU seconds.
    """
    toPhone, toBrowser = Sink(), Sink()
    sendPhone, sendBrowser = toPhone.sendto, toBrowser.sendto
    unpack, pack = _HEADER.unpack_from, _HEADER.pack
    protect, unprotect = tx.protect, rx.unprotect
    seqOffset, tsOffset = 1000, 123456
    start = time.process_time()
    for phone, browser in zip(fromPhone, fromBrowser):
        b0, b1, seq, ts, ssrc = unpack(phone)
        sendBrowser(protect(pack(b0, b1, (seq + seqOffset) & 0xFFFF,
                                 (ts + tsOffset) & 0xFFFFFFFF, TAP_SSRC) + phone[12:]), BROWSER)
        plain = unprotect(browser)
        b0, b1, seq, ts, ssrc = unpack(plain)
        sendPhone(pack(b0, b1, (seq + seqOffset) & 0xFFFF, (ts + tsOffset) & 0xFFFFFFFF,
                       PHONE_SSRC) + plain[12:], PHONE)
    cpu = time.process_time() - start
    check(toPhone, toBrowser, browserRx, len(fromPhone))
    return cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=100000, help="packets each way per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each side")
    args = parser.parse_args()
    runs = {"linkrtc": [], "ceiling": []}
    for _ in range(args.repeat):
        for name, run in (("linkrtc", linkrtc), ("ceiling", ceiling)):
            browserTx, rx, tx, browserRx = sessions()
            fromPhone, fromBrowser = packets(args.packets, browserTx)
            runs[name].append(run(fromPhone, fromBrowser, rx, tx, browserRx))
    # One packet relayed one way; both directions ran, so 2 * packets.
    usPerPacket = {name: round(1e6 * min(cpus) / (2 * args.packets), 3)
                   for name, cpus in runs.items()}
    ratio = round(usPerPacket["linkrtc"] / usPerPacket["ceiling"], 2)
    for name in ("linkrtc", "ceiling"):
        print(f"{name:8} {usPerPacket[name]:6.3f} us CPU per packet "
              f"({usPerPacket[name] * 100 / 1000:.3f} ms per call-second of 100 packets); "
              f"runs {[round(c, 3) for c in runs[name]]} s")
    print(f"ratio to the ceiling: {ratio}")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "relay_path.json")
    with open(path, "w") as f:
        json.dump({"benchmark": "relay_path", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                               "machine": platform.machine()},
                   "packetsEachWay": args.packets, "repeat": args.repeat,
                   "usPerPacket": usPerPacket,
                   "msPerCallSecond": {k: round(v * 100 / 1000, 4) for k, v in usPerPacket.items()},
                   "ratioToCeiling": ratio,
                   "cpuSeconds": {k: [round(c, 4) for c in v] for k, v in runs.items()},
                   "command": " ".join(["python", "bench/relay_path.py"] + sys.argv[1:])},
                  f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
