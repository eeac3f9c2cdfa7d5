"""
Tests for L{linkrtc.startup}: binding at start-up or ending the process with
one line, the start-up report, and (in subprocesses) C{twistd linkrtc}'s
exit status and output for a port in use, a bad value and C{--version}.
"""

import errno
import os
import re
import socket
import subprocess
import sys
from io import StringIO

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactor, RaisingMemoryReactor
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site
from twisted.web.static import Data

from linkrtc._version import __version__
from linkrtc.config import LinkRTCConfig, Trunk
from linkrtc.sip.transport import Address
from linkrtc.startup import (
    CannotListen,
    EndpointService,
    SIPListening,
    StartupReport,
    exitCannotListen,
    listenFailureReason,
    redactURL,
)
from linkrtc.test.e2e.harness import ROOT, LinkRTCProcess


def addressInUse(port=5060):
    return CannotListenError("127.0.0.1", port, OSError(errno.EADDRINUSE,
                                                        os.strerror(errno.EADDRINUSE)))


class FakeTransport:
    """A SIP transport layer whose C{listen} fails for the descriptions in C{taken}."""

    def __init__(self, taken=()):
        self.taken = set(taken)
        self.listened = []

    def listen(self, description):
        if description in self.taken:
            return defer.fail(addressInUse())
        self.listened.append(description)
        return defer.succeed(object())

    def listeningAddresses(self):
        return [Address("UDP", "127.0.0.1", 5060), Address("TCP", "::1", 5061)]


class ExitTests(SynchronousTestCase):
    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.stderr = StringIO()
        self.patch(sys, "__stderr__", self.stderr)
        self.patch(sys, "excepthook", sys.excepthook)

    def assertExited(self, description):
        line = (f"linkrtc: cannot listen on {description}: "
                f"{os.strerror(errno.EADDRINUSE).lower()}\n")
        self.assertEqual(self.stderr.getvalue(), line)
        critical = [e for e in self.events if e["log_level"].name == "critical"]
        self.assertEqual([e["line"] for e in critical], [line.strip()])

    def test_reason(self):
        """The reason is the socket error's words, in lower case."""
        self.assertEqual(listenFailureReason(addressInUse()), "address already in use")
        self.assertEqual(listenFailureReason(ValueError("Bad thing")), "bad thing")
        self.assertEqual(listenFailureReason(ValueError()), "valueError")

    def test_exit(self):
        """
        exitCannotListen writes one line to stderr and the log, and raises
        CannotListen, which the installed except hook does not print.
        """
        seen = []
        sys.excepthook = lambda *info: seen.append(info[0])
        e = self.assertRaises(CannotListen, exitCannotListen, "udp:5060", addressInUse())
        self.assertEqual("linkrtc: " + str(e), self.stderr.getvalue().strip())
        self.assertExited("udp:5060")
        sys.excepthook(CannotListen, e, None)
        sys.excepthook(ValueError, ValueError(), None)
        self.assertEqual(seen, [ValueError])
        hook = sys.excepthook
        self.assertRaises(CannotListen, exitCannotListen, "udp:5060", addressInUse())
        self.assertIs(sys.excepthook, hook)

    def test_sipTaken(self):
        """A SIP endpoint in use ends start-up; the endpoints after it are not bound."""
        transport = FakeTransport(taken={"tcp:5060"})
        listening = SIPListening(transport, ["udp:5060", "tcp:5060", "tcp:5070"])
        self.assertRaises(CannotListen, listening.listen)
        self.assertEqual(transport.listened, ["udp:5060"])
        self.assertFalse(listening.bound)
        self.assertExited("tcp:5060")

    def test_sipOnce(self):
        """privilegedStartService binds; startService does not bind again."""
        from linkrtc.service import SIPService

        transport = FakeTransport()
        service = SIPService(transport, ["udp:5060", "tcp:5060"])
        service.privilegedStartService()
        service.startService()
        self.assertEqual(transport.listened, ["udp:5060", "tcp:5060"])
        self.assertEqual(self.stderr.getvalue(), "")

    def test_httpTaken(self):
        """An HTTP endpoint in use ends start-up with one line, no unhandled error."""
        reactor = RaisingMemoryReactor(listenException=addressInUse(8080))
        service = EndpointService(reactor, "tcp:8080:interface=127.0.0.1", Site(Data(b"", "")))
        self.assertRaises(CannotListen, service.privilegedStartService)
        self.assertExited("tcp:8080:interface=127.0.0.1")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_httpBound(self):
        """EndpointService keeps the listening port."""
        reactor = MemoryReactor()
        service = EndpointService(reactor, "tcp:8080:interface=127.0.0.1", Site(Data(b"", "")))
        service.startService()
        self.assertEqual(service.port.getHost().port, 8080)
        self.assertEqual(len(reactor.tcpServers), 1)


class FakeHTTP:
    """An L{EndpointService} look-alike bound to C{host}:C{port}."""

    def __init__(self, description, host, port):
        self.description = description
        self.port = MemoryReactor().listenTCP(port, None, interface=host)
        self.port.getHost = lambda: IPv4Address("TCP", host, port)


class ReportTests(SynchronousTestCase):
    def report(self, http=("tcp:8080:interface=127.0.0.1", "127.0.0.1"), **fields):
        http = FakeHTTP(http[0], http[1], 8080)
        return StartupReport(LinkRTCConfig(**fields), FakeTransport(), http)

    def test_lines(self):
        """One line each: SIP, softphone, WebSocket, media, trunks, routing."""
        self.assertEqual(self.report(media="passthrough").lines(), [
            f"LinkRTC {__version__}: SIP on UDP 127.0.0.1:5060, TCP [::1]:5061",
            "softphone at http://127.0.0.1:8080/",
            "WebSocket at ws://127.0.0.1:8080/ws",
            "media: passthrough (RTP flows between the peers; rtp-ports 20000-29999 unused)",
            "trunks: none",
            "routing: default routing (each call to the client named by the Request-URI user)",
        ])

    def test_bridgeTrunksWebhook(self):
        """Bridge mode gives the RTP range; trunks and the webhook (without userinfo) are named."""
        lines = self.report(
            media="bridge", rtpPorts=(30000, 30099),
            webhook="https://user:secret@app.example.com/hook",
            trunks=(Trunk("pbx", "sip:pbx.example.com", username="1001", password="p",
                          register=True),
                    Trunk("itsp", "sip:itsp.example.net;transport=tls", srtp="required")),
        ).lines()
        self.assertEqual(lines[3:], [
            "media: bridge, RTP on UDP ports 30000-30099",
            "trunks: pbx (sip:pbx.example.com, UDP, registering as 1001), "
            "itsp (sip:itsp.example.net;transport=tls, TLS, SRTP required)",
            "routing: webhook https://app.example.com/hook",
        ])

    def test_everyInterface(self):
        """Listening on every interface, the URLs use the public address when given."""
        lines = self.report(http=("tcp:8080", "0.0.0.0"), publicAddress="203.0.113.7").lines()
        self.assertEqual(lines[1:3], ["softphone at http://203.0.113.7:8080/",
                                      "WebSocket at ws://203.0.113.7:8080/ws"])

    def test_logged(self):
        """startService logs every line at info level."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        report = self.report(media="passthrough")
        report.startService()
        self.assertEqual([e["line"] for e in events if "line" in e], report.lines())

    def test_redact(self):
        """User information is taken out of a URL; other URLs are unchanged."""
        self.assertEqual(redactURL("http://a:b@h.example:8/x?y=1"), "http://h.example:8/x?y=1")
        self.assertEqual(redactURL("http://h.example/x"), "http://h.example/x")


def runLinkRTC(*options, sipPort=None, httpPort=None, timeout=60):
    """
    Run C{twistd -n linkrtc} to its end (it must end by itself).

    @return: C{(CompletedProcess, log text)}.
    """
    process = LinkRTCProcess(*options, sipPort=sipPort, httpPort=httpPort)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        result = subprocess.run(process.command(), cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=timeout)
        return result, process.logText()
    finally:
        os.unlink(process.log)


class CommandLineTests(SynchronousTestCase):
    """C{twistd linkrtc} in a subprocess."""

    def assertOneLine(self, result, line):
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(result.stderr, line + "\n", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_sipPortInUse(self):
        """A SIP UDP port in use: exit status 1 and one line naming it; HTTP not served."""
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        result, log = runLinkRTC(sipPort=port)
        self.assertOneLine(result, f"linkrtc: cannot listen on udp:{port}:interface=127.0.0.1: "
                                   "address already in use")
        self.assertIn("cannot listen on", log)
        self.assertNotIn("Traceback", log)
        self.assertNotIn("softphone at", log)

    def test_httpPortInUse(self):
        """An HTTP port in use: exit status 1 and one line naming it."""
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result, log = runLinkRTC(httpPort=port)
        self.assertOneLine(result, f"linkrtc: cannot listen on tcp:{port}:interface=127.0.0.1: "
                                   "address already in use")
        self.assertNotIn("Unhandled Error", log)
        self.assertNotIn("Traceback", log)

    def test_portInUseDaemon(self):
        """Daemonizing, a port in use ends twistd (no hang) with status 1, naming it."""
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        pidfile, logfile = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        result = subprocess.run(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "--pidfile", pidfile, "--logfile", logfile, "linkrtc", "--sip", "udp:0",
             "--http", f"tcp:{port}:interface=127.0.0.1"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"cannot listen on tcp:{port}", result.stderr)
        self.assertFalse(os.path.exists(pidfile))
        with open(logfile) as f:
            self.assertIn(f"linkrtc: cannot listen on tcp:{port}:interface=127.0.0.1: "
                          "address already in use", f.read())

    def test_badValues(self):
        """A bad value ends twistd with one line naming the key, no usage text, no traceback."""
        for options, line in [
            (["--operator", "nosuch"], "linkrtc: operator: unknown operator 'nosuch'"),
            (["--rtp-ports", "30000-20000"],
             "linkrtc: rtp-ports: low 30000 > high 20000 (give LOW-HIGH)"),
            (["--public-address", "not_an_addr"],
             "linkrtc: public-address: expected an IP address or a host name, "
             "got 'not_an_addr'"),
        ]:
            result, _ = runLinkRTC(*options)
            self.assertEqual(result.returncode, 1)
            self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
            self.assertTrue(result.stderr.startswith(line), result.stderr)
            self.assertEqual(result.stdout, "")

    def test_version(self):
        """twistd linkrtc --version prints LinkRTC's version (and Twisted's)."""
        result, _ = runLinkRTC("--version")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith(f"LinkRTC {__version__} (Twisted "),
                        result.stdout)

    def test_startupLines(self):
        """Once listening, the log says what is served, one line per service."""
        process = LinkRTCProcess().start()
        try:
            log = process.logText()
        finally:
            process.stop()
        for line in [
            f"LinkRTC {__version__}: SIP on UDP 127.0.0.1:{process.sipPort}, "
            f"TCP 127.0.0.1:{process.sipPort}",
            f"softphone at http://127.0.0.1:{process.httpPort}/",
            f"WebSocket at ws://127.0.0.1:{process.httpPort}/ws",
            "media: ", "trunks: none", "routing: default routing",
        ]:
            self.assertIn(line, log)


class TacTests(SynchronousTestCase):
    def test_badTac(self):
        """A .tac whose LinkRTCConfig has a bad value ends twistd with one line."""
        with open(os.path.join(ROOT, "etc", "linkrtc.tac")) as f:
            text = re.sub(r'media="\w+"', 'media="foo"', f.read())
        self.assertIn('media="foo"', text)
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        result = subprocess.run(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
             "--pidfile=", "--logfile", os.path.abspath(self.mktemp()), "-y", path],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr,
                         "linkrtc: media: expected one of passthrough, bridge, got 'foo'\n")

