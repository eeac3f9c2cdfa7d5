"""
Helpers for end-to-end tests: find peers, pick free ports, run
C{twistd -n linkrtc} in a subprocess and wait until it answers SIP.

All traffic stays on 127.0.0.1 (or inside a network namespace the test
makes); every process is bounded by a timeout and killed at cleanup.
"""

import json
import os
import random
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


#: Where the peers' files go (L{shortTempDir}): short whatever TMPDIR is.
SHORT_TMP = "/tmp"


def shortTempDir(prefix="lr"):
    """
    Make a new directory with a short path (C{/tmp/lrXXXXXXXX}) for the
    files a peer reads or writes: baresip cuts C{audio_source} and
    C{snd_path} at about 127 octets, so files under the checkout's
    C{_trial_temp} (as deep as the checkout) would break the tests.
    The caller removes it (C{shutil.rmtree}).

    @return: its absolute path (C{str}).
    """
    return tempfile.mkdtemp(prefix=prefix, dir=SHORT_TMP)


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


#: Ports handed to the peers the tests start (baresip, SIPp, LinkRTC):
#: below the kernel's ephemeral range (32768-60999 by default), so that
#: no outgoing connection of another process (a WebSocket client's) takes
#: one between its choice and its peer's bind; above LinkRTC's RTP range
#: (20000-29999) and baresip's (10000-20000). Given once each, in a
#: shuffled order, until all have been given.
FREE_PORTS = range(30000, 32768)
_portOrder = []


def _nextPort():
    if not _portOrder:
        ports = list(FREE_PORTS)
        random.shuffle(ports)
        _portOrder.extend(ports)
    return _portOrder.pop()


def _bindable(kind, port):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def freePort(kind=socket.SOCK_DGRAM, both=False):
    """
    @param kind: C{socket.SOCK_DGRAM} (UDP) or C{socket.SOCK_STREAM} (TCP).
    @param both: find a port free for UDP and TCP at once.
    @return: a port number of L{FREE_PORTS} free on 127.0.0.1 right now,
        not given before in this process (until all have been).
    @raise RuntimeError: none found in 200 tries.
    """
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if both else (kind,)
    for _ in range(200):
        port = _nextPort()
        if all(_bindable(k, port) for k in kinds):
            return port
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


def twistdCommand():
    """
    @return: the argv start of C{twistd}: the C{twistd} script next to
        this Python (C{.venv/bin/twistd}, as the README runs it) when
        there is one, else this Python running twistd.
    """
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class LinkRTCProcess:
    """
    A C{twistd -n linkrtc} subprocess.

    @ivar sipPort: its SIP port (UDP and TCP on 127.0.0.1).
    @ivar httpPort: its HTTP/WebSocket port.
    @ivar log: path of its log file.

    C{LINKRTC_E2E_OPTIONS} in the environment adds options to every run
    (for example C{--event-loop uvloop} to run the suite on uvloop).

    With C{embeddedDefaults=True} it is the README's run command itself,
    C{twistd -n linkrtc} with no option at all (not even
    C{LINKRTC_E2E_OPTIONS}): SIP on 127.0.0.1:5060, HTTP on
    127.0.0.1:8080, the log on twistd's stdout. Only inside a network
    namespace, where those ports are free.
    """

    #: The ports of C{twistd -n linkrtc} on its embedded defaults.
    DEFAULT_SIP_PORT = 5060
    DEFAULT_HTTP_PORT = 8080

    def __init__(self, *options, sipPort=None, httpPort=None, env=None,
                 embeddedDefaults=False):
        self.embeddedDefaults = embeddedDefaults
        if embeddedDefaults:
            if options or sipPort or httpPort:
                raise ValueError("embeddedDefaults takes no option and no port")
            sipPort, httpPort = self.DEFAULT_SIP_PORT, self.DEFAULT_HTTP_PORT
        self.sipPort = sipPort or freePort(both=True)
        self.httpPort = httpPort or freePort(socket.SOCK_STREAM)
        self.options = list(options)
        self.env = env
        self.process = None
        self.directory = None
        fd, self.log = tempfile.mkstemp(prefix="linkrtc-e2e-", suffix=".log")
        os.close(fd)

    def command(self):
        """@return: the argv that starts LinkRTC."""
        if self.embeddedDefaults:
            return twistdCommand() + ["-n", "linkrtc"]
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
        cwd, stdout = ROOT, subprocess.DEVNULL
        if self.embeddedDefaults:
            # twistd writes twistd.pid in its directory and logs to stdout.
            self.directory = cwd = shortTempDir("lrtwistd")
            stdout = open(self.log, "w")
        try:
            self.process = subprocess.Popen(
                self.command(), cwd=cwd, env=env, stdout=stdout, stderr=subprocess.STDOUT,
            )
        finally:
            if stdout is not subprocess.DEVNULL:
                stdout.close()
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
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)

    def logText(self):
        """@return: the log so far, C{str} (empty once removed)."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


#: SIPp options naming a file it reads; L{runSIPp} copies it to a short path.
SIPP_FILE_OPTIONS = ("-sf", "-inf", "-tls_cert", "-tls_key", "-tls_ca")


def runSIPp(*args, timeout=60.0):
    """
    Run SIPp bounded in time, in a short scratch directory (for its trace
    files, L{shortTempDir}); a C{-sf} scenario given by a bare name is
    taken from L{SCENARIOS}. The files SIPp reads (L{SIPP_FILE_OPTIONS})
    are copied into the scratch directory first, so no path it sees
    depends on where the checkout is.

    @param timeout: seconds.
    @return: the L{subprocess.CompletedProcess} (text output).
    """
    sipp = requirePeer("sipp")
    args = list(args)
    scratch = shortTempDir("lrsipp")
    for i, arg in enumerate(args[:-1]):
        if arg in SIPP_FILE_OPTIONS:
            path = args[i + 1]
            if arg == "-sf" and not os.path.isabs(path):
                path = os.path.join(SCENARIOS, path)
            args[i + 1] = shutil.copy(path, os.path.join(scratch, f"{i}-{os.path.basename(path)}"))
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


def readCDRs(path, count, timeout, record="end"):
    """
    Read the CDR file (JSON lines) at C{path} until it has C{count} records
    of kind C{record}.

    @param timeout: seconds; after it, what is there is returned.
    @param record: C{"end"} (one per call), C{"start"} (one per answered
        call) or C{None} for every line.
    @return: the CDRs (C{dict}s).
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        if os.path.exists(path):
            with open(path) as f:
                lines = [json.loads(line) for line in f if line.strip()]
        if record is not None:
            lines = [r for r in lines if r.get("record") == record]
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
