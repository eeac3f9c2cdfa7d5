"""
Tests for L{linkrtc.media.relay.WebRTCTap}'s hot path with fakes standing
in for aiortc's DTLS transport and aioice's connection: no sockets, no
event loop. The end-to-end relay is tested in L{test_bridge}.
"""

import os

import pylibsrtp
from aioice.ice import StunProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from linkrtc.media.relay import WebRTCTap
from linkrtc.media.rtp import buildHeader, parseRTP

BROWSER = ("127.0.0.1", 50000)
AUTH = b"AUTH"


class FakeSRTP:
    """'Protects' by appending AUTH; unprotect fails without it."""

    def protect(self, data):
        return data + AUTH

    def unprotect(self, data):
        if not data.endswith(AUTH):
            raise ValueError("authentication failed")
        return data[:-len(AUTH)]

    def unprotect_rtcp(self, data):
        return self.unprotect(data)


class FakeDatagramTransport:
    def __init__(self):
        self.sent = []

    def sendto(self, data, addr):
        self.sent.append((data, addr))


class FakeCandidate:
    component = 1


class FakePair:
    def __init__(self, protocol):
        self.protocol = protocol
        self.remote_addr = BROWSER


class FakeConnection:
    """aioice's Connection: data_received queues for aiortc."""

    def __init__(self, protocol):
        self._nominated = {1: FakePair(protocol)}
        self.queued = []

    def data_received(self, data, component):
        self.queued.append((data, component))


class FakeIceTransport:
    def __init__(self, connection):
        self._connection = connection


class FakeDtls:
    def __init__(self, ice):
        self.transport = ice
        self.state = "connecting"
        self._rx_srtp = None
        self._tx_srtp = None
        self._listeners = []
        self.aiortcSent = []
        self.aiortcReceived = []

    def on(self, event, listener):
        self._listeners.append(listener)

    def remove_listener(self, event, listener):
        self._listeners.remove(listener)

    def connect(self, rx=None, tx=None):
        self._rx_srtp = rx or FakeSRTP()
        self._tx_srtp = tx or FakeSRTP()
        self.state = "connected"
        for listener in list(self._listeners):
            listener()

    async def _handle_rtp_data(self, data, arrival_time_ms):
        self.aiortcReceived.append(data)

    async def _send_rtp(self, data):
        self.aiortcSent.append(data)


class FakeSender:
    _ssrc = 0xABCDEF


class FakeTransceiver:
    sender = FakeSender()


class FakeLeg:
    def __init__(self, dtls):
        self.dtls = dtls
        self.transceiver = FakeTransceiver()


def stunProtocol():
    protocol = StunProtocol.__new__(StunProtocol)  # no asyncio future needed
    protocol.transport = FakeDatagramTransport()
    protocol.local_candidate = FakeCandidate()
    return protocol


def srtpPair():
    """@return: C{(sender, receiver)} pylibsrtp sessions (AES-256-GCM, as aiortc negotiates)."""
    key = os.urandom(44)
    profile = pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM
    return (pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                                               srtp_profile=profile)),
            pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                                               srtp_profile=profile)))


def rtp(seq=1, pt=0, payload=b"\xff" * 160):
    return buildHeader(0, pt, seq, 160 * seq, 0x1234) + payload


class WebRTCTapTests(SynchronousTestCase):
    def setUp(self):
        self.protocol = stunProtocol()
        self.connection = FakeConnection(self.protocol)
        self.dtls = FakeDtls(FakeIceTransport(self.connection))
        self.tap = WebRTCTap(Clock(), FakeLeg(self.dtls), 0, 8000)
        self.relayed = []

    def relay(self):
        self.tap.onPacket = lambda *packet: self.relayed.append(packet)

    def test_hooksWhenConnected(self):
        """The aioice hooks go in when DTLS connects, not before."""
        self.assertNotIn("data_received", vars(self.connection))
        self.assertNotIn("datagram_received", vars(self.protocol))
        self.dtls.connect()
        self.assertIn("data_received", vars(self.connection))
        self.assertIn("datagram_received", vars(self.protocol))

    def test_relaySynchronously(self):
        """
        In relay mode an SRTP packet is unprotected and relayed inside the
        datagram callback: nothing is queued for aiortc.
        """
        self.dtls.connect()
        self.relay()
        self.protocol.datagram_received(rtp(7) + AUTH, BROWSER)
        self.assertEqual(self.relayed, [parseRTP(rtp(7))])
        self.assertEqual(self.connection.queued, [])
        self.assertEqual(self.tap.stats()["packetsReceived"], 1)
        self.assertEqual(self.tap.stats()["bytesReceived"], 160)

    def test_othersGoToAiortc(self):
        """SRTCP, DTLS and (outside relay mode) SRTP take aioice's queue."""
        self.dtls.connect()
        srtp = rtp(1) + AUTH
        self.connection.data_received(srtp, 1)  # not relaying
        self.relay()
        srtcp = bytes([0x80, 200]) + b"\x00" * 30 + AUTH
        dtls = bytes([22]) + b"\x00" * 30
        self.connection.data_received(srtcp, 1)
        self.connection.data_received(dtls, 1)
        self.protocol.datagram_received(srtcp, BROWSER)
        self.assertEqual(self.connection.queued, [(srtp, 1), (srtcp, 1), (dtls, 1), (srtcp, 1)])
        self.assertEqual(self.relayed, [])

    def test_notAfterClose(self):
        """Once DTLS is no longer connected, packets go to aioice's queue as before."""
        self.dtls.connect()
        self.relay()
        self.dtls.state = "closed"
        for listener in list(self.dtls._listeners):
            listener()
        self.protocol.datagram_received(rtp(1) + AUTH, BROWSER)
        self.assertEqual(self.relayed, [])
        self.assertEqual(self.connection.queued, [(rtp(1) + AUTH, 1)])

    def test_srtpFailuresCounted(self):
        self.dtls.connect()
        self.relay()
        self.protocol.datagram_received(rtp(1) + b"BAD!", BROWSER)
        self.assertEqual(self.relayed, [])
        self.assertEqual(self.connection.queued, [])
        self.assertEqual(self.tap.stats()["srtpFailures"], 1)

    def test_sendSynchronously(self):
        """send() protects and writes to the nominated pair's transport at once."""
        self.tap.send(0, 0, 1, 160, b"\xff" * 160)  # not connected: nothing
        self.dtls.connect()
        self.tap.send(1, 0, 2, 320, b"\xff" * 160)
        expected = buildHeader(1, 0, 2, 320, 0xABCDEF) + b"\xff" * 160 + AUTH
        self.assertEqual(self.protocol.transport.sent, [(expected, BROWSER)])
        self.assertEqual(self.dtls.aiortcSent, [])
        self.assertEqual((self.tap.packetsSent, self.tap.bytesSent), (1, 160))

    def test_sendWithoutNominatedPair(self):
        """No nominated pair (aioice: not connected): nothing is sent."""
        self.dtls.connect()
        self.connection._nominated.clear()
        self.tap.send(0, 0, 1, 160, b"\xff" * 160)
        self.assertEqual(self.protocol.transport.sent, [])

    def test_fallbackWithoutAioiceNames(self):
        """Without aioice's connection the tap uses aiortc's own seam."""
        self.dtls.transport = object()
        self.dtls.connect()
        self.relay()
        self.tap.send(0, 0, 1, 160, b"\xff" * 160)
        self.assertEqual(self.dtls.aiortcSent, [buildHeader(0, 0, 1, 160, 0xABCDEF) + b"\xff" * 160])
        self.assertEqual((self.tap.packetsSent, self.tap.bytesSent), (1, 160))
        coroutine = self.dtls._handle_rtp_data(rtp(3), 0)
        self.assertRaises(StopIteration, coroutine.send, None)
        self.assertEqual(self.relayed, [parseRTP(rtp(3))])

    def test_aiortcPacketsRenumbered(self):
        """
        What aiortc's sender sends (transcode mode) continues the stream the
        tap sent (relay mode): next sequence number, marker set, and back;
        RTCP and other SSRCs pass as they are.
        """
        self.dtls.connect()
        seq, ts = self.tap.out.local(160)
        self.tap.send(0, 0, seq, ts, b"\xff" * 160)

        def aiortcSends(data):
            self.assertRaises(StopIteration, self.dtls._send_rtp(data).send, None)

        for n in range(2):
            aiortcSends(buildHeader(0, 0, 40000 + n, 9000 + 160 * n, 0xABCDEF) + b"\x01" * 160)
        rtcp = bytes([0x80, 200]) + b"\x00" * 26
        aiortcSends(rtcp)
        other = buildHeader(0, 0, 7, 7, 0x999) + b"\x02"
        aiortcSends(other)
        sent = [parseRTP(p) for p in self.dtls.aiortcSent[:2]]
        self.assertEqual([(p[0], p[2]) for p in sent], [(1, (seq + 1) & 0xFFFF),
                                                        (0, (seq + 2) & 0xFFFF)])
        self.assertEqual(sent[1][3] - sent[0][3], 160)
        self.assertEqual({p[4] for p in sent}, {0xABCDEF})
        self.assertEqual(self.dtls.aiortcSent[2:], [rtcp, other])
        self.assertEqual(self.tap.packetsSent, 4)
        # Back to the relay: the sequence goes on.
        self.assertEqual(self.tap.out.relay(0x1234, 100, 16000)[0], (seq + 3) & 0xFFFF)

    def test_realSRTP(self):
        """
        With pylibsrtp sessions (as aiortc makes them) the tap uses their
        contexts directly (L{linkrtc.media.srtpdirect}): what the browser
        protects is relayed, what the tap sends the browser decrypts, on
        the first packet (which picks the pair) and on the fast path after.
        """
        browserTx, rx = srtpPair()
        tx, browserRx = srtpPair()
        self.dtls.connect(rx, tx)
        self.relay()
        self.protocol.datagram_received(browserTx.protect(rtp(7)), BROWSER)
        self.assertEqual(self.relayed, [parseRTP(rtp(7))])
        forged = bytearray(browserTx.protect(rtp(8)))
        forged[-1] ^= 1
        self.protocol.datagram_received(bytes(forged), BROWSER)
        self.assertEqual((len(self.relayed), self.tap.srtpFailures), (1, 1))
        for seq in (1, 2, 3):
            self.tap.send(seq == 1, 0, seq, 160 * seq, b"\x01" * seq)
        sent = [parseRTP(browserRx.unprotect(data)) for data, addr in self.protocol.transport.sent]
        self.assertEqual(sent, [(seq == 1, 0, seq, 160 * seq, 0xABCDEF, b"\x01" * seq)
                                for seq in (1, 2, 3)])
        self.assertEqual((self.tap.packetsSent, self.tap.bytesSent), (3, 6))

    def test_relayFromOtherPairs(self):
        """
        SRTP arriving through aioice's connection (a pair other than the
        one whose socket the tap took) is relayed too; failures counted.
        """
        self.dtls.connect()
        self.relay()
        self.connection.data_received(rtp(9) + AUTH, 1)
        self.connection.data_received(rtp(10) + b"BAD!", 1)
        self.assertEqual(self.relayed, [parseRTP(rtp(9))])
        self.assertEqual(self.connection.queued, [])
        self.assertEqual(self.tap.srtpFailures, 1)

    def test_nominatedPairChanges(self):
        """A newly nominated pair is picked up by the next packet."""
        self.dtls.connect()
        self.tap.send(0, 0, 1, 160, b"\xff")
        other = stunProtocol()
        self.connection._nominated[1] = FakePair(other)
        self.tap.send(0, 0, 2, 320, b"\xff")
        self.tap.send(0, 0, 3, 480, b"\xff")
        self.assertEqual(len(self.protocol.transport.sent), 1)
        self.assertEqual([parseRTP(d[:-len(AUTH)])[2] for d, a in other.transport.sent], [2, 3])

    def test_detach(self):
        """detach() gives aioice and aiortc their own methods back."""
        self.dtls.connect()
        self.tap.detach()
        for obj, name in [(self.connection, "data_received"), (self.protocol, "datagram_received"),
                          (self.dtls, "_handle_rtp_data"), (self.dtls, "_send_rtp")]:
            self.assertNotIn(name, vars(obj))
        self.assertIsInstance(self.dtls._rx_srtp, FakeSRTP)
        self.assertEqual(self.dtls._listeners, [])
