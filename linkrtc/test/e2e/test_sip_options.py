"""
SIPp sends OPTIONS to a running C{twistd -n linkrtc} over UDP and TCP, and
again with SIPp's C{-lost 10}: every transaction completes.
"""

from twisted.trial.unittest import SynchronousTestCase

from linkrtc.test.e2e.harness import LinkRTCProcess, freePort, requirePeer, runSIPp


class OptionsTests(SynchronousTestCase):
    def setUp(self):
        requirePeer("sipp")
        self.linkrtc = LinkRTCProcess().start()
        self.addCleanup(self.linkrtc.stop)

    def sipp(self, *extra, calls=10):
        result = runSIPp(
            f"127.0.0.1:{self.linkrtc.sipPort}", "-sf", "options.xml",
            "-i", "127.0.0.1", "-p", str(freePort(both=True)), "-m", str(calls),
            "-r", "20", "-trace_stat", "-trace_err", *extra, timeout=90,
        )
        self.assertEqual(
            result.returncode, 0,
            f"sipp failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
            f"\nlinkrtc log:\n{self.linkrtc.logText()[-3000:]}",
        )
        return result

    def test_udp(self):
        """OPTIONS over UDP: 200 OK with Allow for every request."""
        self.sipp(calls=20)

    def test_tcp(self):
        """OPTIONS over TCP (one connection reused): 200 OK each time."""
        self.sipp("-t", "t1", calls=20)

    def test_udpLost(self):
        """With 10 % of SIPp's packets lost, retransmissions still complete every transaction."""
        self.sipp("-lost", "10", calls=30)
