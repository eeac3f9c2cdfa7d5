"""
The real parts of a LinkRTC cluster for end-to-end tests and the bench
(docs/scaling.rst): C{redis-server} on a Unix socket and C{kamailio} with
etc/kamailio/kamailio.cfg in front of the nodes, each a subprocess in its
own short scratch directory, all on 127.0.0.1.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

from linkrtc.test.e2e.harness import ROOT, freePort, requirePeer, shortTempDir, waitForSIP

#: The Kamailio configuration under test.
KAMAILIO_CFG = os.path.join(ROOT, "etc", "kamailio", "kamailio.cfg")


class RedisProcess:
    """
    C{redis-server} on a Unix socket in a short scratch directory, no
    persistence.

    @ivar url: the C{unix://} URL LinkRTC's C{--redis} takes.
    """

    def __init__(self):
        self.executable = requirePeer("redis-server")
        self.directory = shortTempDir("lrredis")
        self.socketPath = os.path.join(self.directory, "redis.sock")
        self.url = f"unix://{self.socketPath}"
        self.log = os.path.join(self.directory, "redis.log")
        self.process = None

    def start(self, timeout=15.0):
        """Start and wait until it answers PING. @param timeout: seconds."""
        self.process = subprocess.Popen(
            [self.executable, "--port", "0", "--unixsocket", self.socketPath,
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", self.directory, "--logfile", self.log],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited: {self.logText()}")
            if self.command("PING") == "+PONG":
                return self
            time.sleep(0.1)
        raise AssertionError(f"redis-server did not answer PING: {self.logText()}")

    def command(self, *words):
        """
        Send one inline command; @return: the first line of the reply
        (C{str}), or C{None} when the server is not reachable.
        """
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(self.socketPath)
                s.sendall((" ".join(words) + "\r\n").encode())
                return s.recv(65536).decode(errors="replace").split("\r\n")[0]
        except OSError:
            return None

    def logText(self):
        try:
            with open(self.log) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


class KamailioProcess:
    """
    C{kamailio -DD -E} with etc/kamailio/kamailio.cfg, its dispatcher set 1
    being C{nodes} (L{linkrtc.test.e2e.harness.LinkRTCProcess}es).

    @ivar port: its SIP port (UDP, 127.0.0.1).
    @ivar probeInterval: seconds between its OPTIONS probes.
    @ivar children: its UDP worker processes; one by default, since
        several may relay a node's 180 after its 200 (each worker relays
        the message it read as soon as it can), which SIPp's scenarios
        refuse (a real UAC ignores it).
    """

    def __init__(self, nodes, probeInterval=1, nodeTimeout=2000, children=1):
        self.executable = requirePeer("kamailio")
        self.nodes = list(nodes)
        self.port = freePort()
        self.probeInterval = probeInterval
        self.nodeTimeout = nodeTimeout
        self.children = children
        self.directory = shortTempDir("lrkam")
        self.log = os.path.join(self.directory, "kamailio.log")
        self.dispatcherList = os.path.join(self.directory, "dispatcher.list")
        with open(self.dispatcherList, "w") as f:
            for node in self.nodes:
                f.write(f"1 sip:127.0.0.1:{node.sipPort}\n")
        self.process = None

    def command(self):
        """@return: the argv that starts Kamailio."""
        return [
            self.executable, "-DD", "-E", "-f", KAMAILIO_CFG, "-Y", self.directory,
            "-P", os.path.join(self.directory, "kamailio.pid"),
            "-n", str(self.children),
            "-A", f"LISTEN=udp:127.0.0.1:{self.port}",
            "-A", f'DISPATCHER_LIST="{self.dispatcherList}"',
            "-A", f"PROBE_INTERVAL={self.probeInterval}",
            "-A", f"NODE_TIMEOUT={self.nodeTimeout}",
            # The faster memory managers (docs/scaling.rst): about 15 % less
            # CPU per call than Debian's default.
            "-x", "fm", "-X", "fm",
            # Shared memory for the transactions of a few thousand calls a
            # second (the default 64 MB runs out near 800 calls/s: t_relay
            # fails with 500), as docs/scaling.rst recommends.
            "-m", "256",
        ]

    def start(self, timeout=20.0):
        """Start and wait until an OPTIONS through it is answered. @param timeout: seconds."""
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            waitForSIP(self.port, timeout=timeout, process=self.process)
        except Exception as e:
            raise AssertionError(f"kamailio did not start ({e}):\n{self.logText()}")
        return self

    def logText(self, full=False):
        """@return: its log (the last 4000 characters unless C{full})."""
        try:
            with open(self.log, errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        return text if full else text[-4000:]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)
