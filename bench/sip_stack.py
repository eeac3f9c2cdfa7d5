"""
SIP stack benchmark, in process CPU time (C{time.process_time}): whole
calls through LinkRTC's SIP stack alone.

The transport, transaction and user-agent layers are wired as in the
service (C{linkrtc.service}) on a fake UDP socket and a heap-ordered fake
clock; an invite handler answers at once (180, then 200 with SDP). Each
call is SIPp's C{uac_call.xml}: INVITE in, 100/180/200 out, ACK in, BYE
in, 200 out. The clock moves 1/400 s per call, so transaction and dialog
timers start, are cancelled and expire as they do at 400 calls/s. The
log level is C{info}, as in the service. No call layer, WebSocket, log
file or metrics: the figure is the SIP stack's share of
C{bench/cps.py}'s CPU per call.

Prints microseconds of CPU per call (best of three) and appends them to
C{bench/results/sip_parse.txt}.

Run: C{python bench/sip_stack.py [--calls 2000] [--profile]}.
"""

import argparse
import cProfile
import os
import platform
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from heapclock import HeapClock  # noqa: E402
from sip_parse import record  # noqa: E402  (bench/, the script's folder)
from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.testing import MemoryReactor  # noqa: E402
from zope.interface import implementer  # noqa: E402

from linkrtc.interfaces import IInviteHandler  # noqa: E402
from linkrtc.logging import LogLevelService  # noqa: E402
from linkrtc.sip.leglistener import DetachedLegListener  # noqa: E402
from linkrtc.sip.transaction import TransactionLayer  # noqa: E402
from linkrtc.sip.transport import SIPTransportLayer  # noqa: E402
from linkrtc.sip.useragent import UserAgent  # noqa: E402

SDP = (b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
       b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\n"
       b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
PEER = ("127.0.0.1", 5062)


def request(method, n, cseq, toTag=None, body=b""):
    """A request of call C{n} as SIPp's uac_call.xml writes it."""
    head = (
        f"{method} sip:bench@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-4242-{n}-{cseq}-{method};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: \"sipp\" <sip:alice@127.0.0.1:5062>;tag=4242SIPpTag00{n}\r\n"
        "To: <sip:bench@127.0.0.1:5060>" + (f";tag={toTag}" if toTag else "") + "\r\n"
        f"Call-ID: {n}-4242@127.0.0.1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@127.0.0.1:5062;transport=UDP>\r\n"
        + ("Content-Type: application/sdp\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class BenchReactor(HeapClock, MemoryReactor):
    """A memory reactor with a heap-ordered clock (as the real reactors) and fake UDP."""

    def __init__(self):
        MemoryReactor.__init__(self)
        HeapClock.__init__(self, 0.0)
        self.written = 0

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        reactor = self

        class Transport:
            def write(self, data, addr):
                reactor.written += 1

        class Port:
            def getHost(self):
                return IPv4Address("UDP", interface or "0.0.0.0", port)

            def stopListening(self):
                pass

        protocol.makeConnection(Transport())
        return Port()


@implementer(IInviteHandler)
class AnsweringHandler:
    """Rings and answers every INVITE at once; keeps the To tag for the ACK and BYE."""

    def __init__(self):
        self.tags = {}
        self.calls = {}

    def inviteReceived(self, leg):
        leg.setListener(DetachedLegListener())  # the one in-dialog request is the BYE: 200
        leg.sendProvisional(180)
        leg.sendFinal(200, body=SDP, contentType="application/sdp")
        self.tags[leg.callId] = leg.localTag


class Stack:
    """The three SIP layers wired as in linkrtc.service."""

    def __init__(self):
        self.reactor = BenchReactor()
        self.handler = AnsweringHandler()
        self.transport = SIPTransportLayer(self.reactor)
        self.transactions = TransactionLayer(self.transport, self.reactor, None,
                                             unknownSourceRetransmissions=2)
        self.ua = UserAgent(self.transactions, self.transport, self.handler, self.reactor)
        self.transactions.tu = self.ua
        self.transport.receiver = self.transactions
        self.transport.listen("udp:5060:interface=127.0.0.1")
        self.protocol = self.transport._listeners[0][2]

    def call(self, n):
        """One whole call; @return: the datagrams written for it."""
        before = self.reactor.written
        receive = self.protocol.datagramReceived
        receive(request("INVITE", n, 1, body=SDP), PEER)
        tag = self.handler.tags.pop(f"{n}-4242@127.0.0.1")
        receive(request("ACK", n, 1, tag), PEER)
        receive(request("BYE", n, 2, tag), PEER)
        self.reactor.advance(1 / 400)
        return self.reactor.written - before


def run(calls):
    """@return: CPU microseconds per call of C{calls} calls on a fresh stack."""
    stack = Stack()
    # the messages are made outside the timed part: only the stack is measured
    for n in range(200):
        assert stack.call(n) == 4, "a call must send 100, 180, 200 and the BYE's 200"
    begin = time.process_time()
    for n in range(200, 200 + calls):
        stack.call(n)
    return 1e6 * (time.process_time() - begin) / calls


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000,
                        help="calls per run (2000: bench/cps.py at 400/s for 5 s)")
    parser.add_argument("--profile", action="store_true",
                        help="print the cProfile of one run (own time)")
    options = parser.parse_args()
    # as in the service: events below info are dropped (linkrtc.logging.debugEnabled)
    LogLevelService().startService()
    if options.profile:
        profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
        profiler.runcall(run, options.calls)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return
    best = min(run(options.calls) for _ in range(3))
    text = (f"sip_stack {time.strftime('%Y-%m-%dT%H:%M:%S')} python "
            f"{platform.python_version()} {platform.machine()}\n"
            f"  whole SIP stack (transport, transactions, user agent), one call "
            f"(3 requests in, 4 responses out, timers): {best:.1f} us CPU/call\n")
    record(text)


if __name__ == "__main__":
    main()
