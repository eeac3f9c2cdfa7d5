"""
Helpers for end-to-end tests: find peers, pick free ports, run
C{twistd -n linkrtc} in a subprocess and wait until it answers SIP.

All traffic stays on 127.0.0.1 (or inside a network namespace the test
makes); every process is bounded by a timeout and killed at cleanup.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from twisted.trial.unittest import SkipTest

import linkrtc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(linkrtc.__file__)))
SCENARIOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
HERE_MESSAGES = os.path.join(ROOT, "linkrtc", "sip", "test", "messages")


def inCI():
    """@return: C{True} when running in CI, where no end-to-end test may skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def requirePeer(executable):
    """
    @return: the path of C{executable}.
    @raise SkipTest: when it is missing on a developer's machine.
    @raise AssertionError: when it is missing in CI.
    """
    path = shutil.which(executable)
    if path is None:
        message = f"{executable} is not installed"
        if inCI():
            raise AssertionError(message + " (CI must install it)")
        raise SkipTest(message)
    return path


def requireNamespaces():
    """Check that C{unshare --net} works here (root); skip or fail as L{requirePeer}."""
    requirePeer("unshare")
    result = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10)
    if result.returncode != 0:
        message = "network namespaces unavailable: " + result.stderr.decode(errors="replace")
        if inCI():
            raise AssertionError(message)
        raise SkipTest(message)


def freePort(kind=socket.SOCK_DGRAM, both=False):
    """
    @param both: find a port free for UDP and TCP at once.
    @return: a port number free on 127.0.0.1 right now.
    """
    for _ in range(50):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if not both:
            return port
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
    raise RuntimeError("no free port")


def optionsRequest(port, localPort):
    """@return: bytes of an OPTIONS request to 127.0.0.1:C{port}."""
    branch = "z9hG4bK" + uuid.uuid4().hex
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{localPort};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@probe\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def waitForSIP(port, host="127.0.0.1", timeout=20.0, process=None):
    """
    Send OPTIONS over UDP until LinkRTC answers.

    @param timeout: seconds.
    @raise AssertionError: when nothing answered in time or the process died.
    """
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(0.25)
    try:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"linkrtc exited with {process.returncode}")
            s.sendto(optionsRequest(port, s.getsockname()[1]), (host, port))
            try:
                data, _ = s.recvfrom(65536)
            except socket.timeout:
                continue
            if data.startswith(b"SIP/2.0 200"):
                return
        raise AssertionError(f"no SIP answer on {host}:{port} within {timeout} s")
    finally:
        s.close()


class LinkRTCProcess:
    """
    A C{twistd -n linkrtc} subprocess.

    @ivar sipPort: its SIP port (UDP and TCP on 127.0.0.1).
    @ivar httpPort: its HTTP/WebSocket port.
    @ivar log: path of its log file.

    C{LINKRTC_E2E_OPTIONS} in the environment adds options to every run
    (for example C{--event-loop uvloop} to run the suite on uvloop).
    """

    def __init__(self, *options, sipPort=None, httpPort=None, env=None):
        self.sipPort = sipPort or freePort(both=True)
        self.httpPort = httpPort or freePort(socket.SOCK_STREAM)
        self.options = list(options)
        self.env = env
        self.process = None
        fd, self.log = tempfile.mkstemp(prefix="linkrtc-e2e-", suffix=".log")
        os.close(fd)

    def command(self):
        """@return: the argv that starts LinkRTC."""
        return [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "-n", "--pidfile=", "--logfile", self.log, "linkrtc",
            "--sip", f"udp:{self.sipPort}:interface=127.0.0.1",
            "--sip", f"tcp:{self.sipPort}:interface=127.0.0.1",
            "--http", f"tcp:{self.httpPort}:interface=127.0.0.1",
        ] + self.options + os.environ.get("LINKRTC_E2E_OPTIONS", "").split()

    def start(self, timeout=20.0):
        """Start and wait until SIP answers. @param timeout: seconds."""
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.update(self.env or {})
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        try:
            waitForSIP(self.sipPort, timeout=timeout, process=self.process)
        except BaseException:
            self.stop()
            raise
        return self

    #: Seconds L{stop} lets a drain run before the second SIGTERM.
    drainGrace = 3.0

    def stop(self, timeout=15.0):
        """
        Stop with SIGTERM: LinkRTC drains (it exits at once without live
        calls); after L{drainGrace} seconds a second SIGTERM ends the calls
        left; SIGKILL after C{timeout} seconds. Removes the log (kept when
        C{LINKRTC_KEEP_LOGS} is set). @return: the exit code.
        """
        try:
            if self.process is None or self.process.poll() is not None:
                return self.process.returncode if self.process else None
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(min(self.drainGrace, timeout))
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(max(timeout - self.drainGrace, 1.0))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
                raise AssertionError("linkrtc did not stop on SIGTERM")
        finally:
            if not os.environ.get("LINKRTC_KEEP_LOGS") and os.path.exists(self.log):
                os.unlink(self.log)

    def logText(self):
        """@return: the log so far, C{str} (empty once removed)."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def runSIPp(*args, timeout=60.0):
    """
    Run SIPp bounded in time, in a scratch directory (for its trace files);
    a C{-sf} scenario given by a bare name is taken from L{SCENARIOS}.

    @param timeout: seconds.
    @return: the L{subprocess.CompletedProcess} (text output).
    """
    sipp = requirePeer("sipp")
    args = list(args)
    for i, arg in enumerate(args[:-1]):
        if arg == "-sf" and not os.path.isabs(args[i + 1]):
            args[i + 1] = os.path.join(SCENARIOS, args[i + 1])
    scratch = tempfile.mkdtemp(prefix="linkrtc-sipp-")
    try:
        return subprocess.run(
            [sipp, *args, "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error"],
            capture_output=True, text=True, timeout=timeout + 15, cwd=scratch,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def runDriver(testCase, script, args, timeout):
    """
    Run the driver C{script} with C{args} in a new network namespace
    (C{unshare --net}), in its own process group.

    @param script: path of the driver script (C{..._driver.py}).
    @param args: its arguments (C{list} of C{str}).
    @param timeout: seconds; the driver's process group is killed after it.
    @return: the driver's result (C{dict}): the last line of its stdout, JSON.
    """
    name = os.path.basename(script).rsplit("_driver.py", 1)[0]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        ["unshare", "--net", sys.executable, script, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=10)
        testCase.fail(f"the {name} driver ran over {timeout} s:\n{stderr[-3000:]}")
    lines = stdout.strip().splitlines()
    testCase.assertTrue(lines, f"no result from the driver (exit {process.returncode}):\n"
                               f"{stderr[-4000:]}")
    return json.loads(lines[-1])


def runScenario(testCase, script, scenario, timeout, heading, details=lambda result: ()):
    """
    Run the driver C{script} with C{--scenario SCENARIO --out DIR} (a new
    directory of C{testCase}'s) by L{runDriver}, and fail unless its
    result says C{ok} (L{assertDriverOK}).

    @param heading: the failure's first line; C{{scenario}} and C{{out}}
        stand for the scenario and the output directory.
    @param details: a callable of the result, giving the failure's extra
        parts (C{str}s).
    @return: the driver's result (C{dict}) and its output directory.
    """
    out = os.path.abspath(testCase.mktemp())
    os.makedirs(out)
    result = runDriver(testCase, script, ["--scenario", scenario, "--out", out], timeout)
    assertDriverOK(testCase, result, heading.format(scenario=scenario, out=out), *details(result))
    return result, out


def assertDriverOK(testCase, result, heading, *details):
    """
    Fail unless the driver's C{result} says C{ok}; the message is
    C{heading}, the errors, the steps, C{details} (C{str}s, in order) and
    the end of LinkRTC's log.
    """
    if not result.get("ok"):
        testCase.fail(
            heading + "\n" + "\n".join(result.get("errors", []))
            + "\nsteps: " + json.dumps(result.get("steps"))
            + "".join(details)
            + "\nlinkrtc log:\n" + result.get("linkrtcLog", "")[-4000:]
        )


def readCDRs(path, count, timeout):
    """
    Read the CDR file (JSON lines) at C{path} until it has C{count} lines.

    @param timeout: seconds; after it, what is there is returned.
    @return: the CDRs (C{dict}s).
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        if os.path.exists(path):
            with open(path) as f:
                lines = [json.loads(line) for line in f if line.strip()]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


class JSONLinesProcess:
    """
    Collects the JSON lines a subprocess prints, in a thread.

    @ivar messages: every line it printed, parsed (C{dict}s), in order; a
        line that is not JSON is C{{"type": UNPARSED, "text": line}}.
    """

    #: C{type} of a message holding a line that is not JSON.
    UNPARSED = "stdout"
    #: what L{waitFor}'s failure says before the messages seen.
    NEVER = "the client never got it"

    def collect(self):
        """Start reading C{self.process.stdout}; @return: the reader thread."""
        self.messages = []
        self._lock = threading.Condition()
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        return reader

    def _read(self):
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                message = {"type": self.UNPARSED, "text": line}
            with self._lock:
                self.messages.append(message)
                self._lock.notify_all()

    def waitFor(self, predicate, timeout):
        """
        Wait for a message matching C{predicate} (a callable, or a C{type}).

        @param timeout: seconds.
        @return: the first matching message.
        @raise AssertionError: none came in time.
        """
        if isinstance(predicate, str):
            kind = predicate
            predicate = lambda m: m.get("type") == kind  # noqa: E731
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for m in self.messages:
                    if predicate(m):
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.NEVER}; it saw {self.messages}")
                self._lock.wait(remaining)


class WSClient(JSONLinesProcess):
    """
    The scripted WebSocket client (wsclient.py) in a subprocess.

    @ivar messages: every message it received, in order (C{dict}s).
    """

    UNPARSED = "stderr"
    NEVER = "client never got it"

    def __init__(self, linkrtc, name, *args):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wsclient.py")
        self.process = subprocess.Popen(
            [sys.executable, script, f"ws://127.0.0.1:{linkrtc.httpPort}/ws", name, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )
        self._reader = self.collect()

    def waitFor(self, predicate, timeout=15.0):
        """L{JSONLinesProcess.waitFor}, 15 s unless told."""
        return JSONLinesProcess.waitFor(self, predicate, timeout)

    def states(self):
        """@return: the C{state} values received, in order."""
        return [m.get("state") for m in self.messages if m.get("type") == "state"]

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
