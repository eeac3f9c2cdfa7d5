"""
Drive calls between a SIP phone registered with LinkRTC's registrar and a
WebRTC client, through a running C{twistd -n linkrtc --media bridge
--config USERS.toml} (C{[sip-users] bob = "..."}), and print what happened
as one JSON line (the last line of stdout).

baresip registers as bob with digest authentication (its account line
C{<sip:bob@127.0.0.1:PORT>;auth_pass=...;regint=60}), answers by itself,
plays a 440 Hz WAV and records what it hears; the aiortc client (alice)
sends 880 Hz.

Run inside a network namespace that has only loopback
(C{test_registrar_e2e} does C{unshare --net}); the script brings C{lo} up.

Scenarios:
  - C{client-calls-phone}: the client calls C{bob} by name
    (C{rtcclient.py --dial bob}); LinkRTC sends the INVITE to baresip's
    registered contact through its flow; tones both ways; the client
    hangs up.
  - C{phone-calls-client}: baresip dials C{sip:alice@LINKRTC}; LinkRTC
    challenges the INVITE (407, bob is a SIP user), baresip answers with
    its credentials, the client answers; tones both ways; the client
    hangs up.
  - C{page-calls-phone}: the demo softphone in headless Chromium
    (C{browser_driver.py}'s helpers), logged in as alice, dials C{bob};
    baresip answers at its registered contact; the page's fake
    microphone sends 880 Hz, baresip 440 Hz (the page's WebAudio FFT and
    baresip's recording); the page hangs up.
  - C{derived-client-calls-phone}: LinkRTC runs with C{--auth-secret};
    baresip registers as dave, a user of no C{[sip-users]}, with SIP
    credentials derived from the secret (C{auth_user=dave~EXPIRY},
    C{linkrtc.signalling.tokens.sipCredentials}); the client, with an
    access token, calls C{dave}; tones both ways; the client hangs up.
  - C{derived-phone-calls-client}: the same, baresip dialling
    C{sip:alice@LINKRTC} once registered: its INVITE is challenged (407)
    and passes with the derived credentials.
"""

import os
import re
import socket
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.signalling.tokens import Grants, mintToken, sipCredentials  # noqa: E402
from linkrtc.test.e2e.bridge_driver import PHONE_TONE, Run  # noqa: E402
from linkrtc.test.e2e.browser_driver import (  # noqa: E402
    PAGE_TONE,
    REMOTE_FREQUENCY,
    closeChromium,
    launchChromium,
    loginPage,
    snapshotPages,
)
from linkrtc.test.e2e.drivers import driverParser, runScenario, writeTone  # noqa: E402
from linkrtc.test.e2e.harness import LinkRTCProcess, freePort  # noqa: E402

PASSWORD = "b0b-secret"
#: carol's password (a second SIP user, the caller of the fork tests).
CAROL_PASSWORD = "c4rol-secret"

USERS = f"""
sip-min-expires = 60
# baresip 1.0.0 (libre 1.x) fails on a SHA-256 challenge: offer MD5 only.
sip-digest-algorithms = ["MD5"]

[sip-users]
bob = "{PASSWORD}"
carol = "{CAROL_PASSWORD}"
"""


#: The C{--auth-secret} of the C{derived-*} scenarios.
AUTH_SECRET = "e2e-derived-sip-credentials-secret-0123456789"
#: The SIP user of the C{derived-*} scenarios: in no C{[sip-users]} table.
DERIVED_USER = "dave"


def metric(port, name, token=None):
    """
    @param token: a bearer token with the C{metrics} grant (with an auth
        secret), or C{None}.
    @return: C{{result label: value}} of counter C{name} from LinkRTC's C{/metrics}.
    """
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token is not None:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        name + r'\{result="([a-z_]+)"\} ([0-9.e+]+)', text)}


class RegistrarRun(Run):
    """A L{Run} where baresip registers with LinkRTC as bob."""

    CLIENT_REGISTERED = "client registered"
    #: The bearer token for C{/metrics} when LinkRTC has an auth secret.
    metricsToken = None

    def startLinkRTC(self, media="bridge", secret=None):
        """@param secret: the C{--auth-secret}, or C{None} (protected mode)."""
        self.cdr = os.path.join(self.out, "cdr.jsonl")
        users = os.path.join(self.out, "users.toml")
        with open(users, "w") as f:
            f.write(USERS)
        options = ("--auth-secret", secret) if secret else ()
        if secret:
            self.metricsToken = mintToken("e2e", {"default": secret}, time.time(),
                                          grants=Grants(metrics=True))
        self.linkrtc = LinkRTCProcess("--media", media, "--ice-address", "127.0.0.1",
                                      "--config", users, "--cdr", self.cdr, *options)
        self.linkrtc.start(timeout=20)
        self.step("linkrtc started", sip=self.linkrtc.sipPort, http=self.linkrtc.httpPort)

    def startRegisteredBaresip(self, *args, seconds=45, user="bob", password=PASSWORD,
                               tone=PHONE_TONE, authUser=None):
        """
        baresip registering as C{user} (digest), answering by itself, playing C{tone} Hz.

        @param authUser: the digest username if not C{user} (derived credentials).
        """
        port = freePort(both=True)
        config = self.configureBaresip(port, "", tone=tone)
        auth = f"auth_user={authUser};" if authUser else ""
        with open(os.path.join(config, "accounts"), "w") as f:
            f.write(f"<sip:{user}@127.0.0.1:{self.linkrtc.sipPort}>;{auth}auth_pass={password};"
                    "regint=60;audio_codecs=pcmu;answermode=auto\n")
        self.spawnBaresip(config, "-t", str(seconds), *args)
        if not self.waitForBaresip(r"200 OK.*\[\d+ binding", 10):
            raise AssertionError("baresip did not register:\n" + self.baresipText()[-2000:])
        self.step("baresip registered")

    def failed(self):
        """After an error: the client's messages, the pages and baresip's log."""
        snapshotPages(self)
        if self.client is not None:
            self.result["clientMessages"] = self.client.messages[-40:]
        if self.baresip is not None:
            self.result["baresipLog"] = self.baresipText()[-3000:]

    def cleanup(self):
        """Close Chromium (if started) first, then the processes of L{Run.cleanup}."""
        closeChromium(self, self.result["errors"])
        self.result["console"] = getattr(self, "console", [])[-80:]
        super().cleanup()

    def finishPhone(self):
        """After the hangup: baresip's end and recording, the CDRs and registrations."""
        self.result["phoneEnded"] = self.waitForBaresip(r"Call with \S+ terminated", 5)
        self.finishBaresip()
        self.result["cdrs"] = self.cdrs()
        self.result["registrarLog"] = [line for line in self.linkrtcLines()
                                       if "registrar:" in line][-10:]
        self.result["registrations"] = metric(self.linkrtc.httpPort,
                                              "linkrtc_sip_registrations_total",
                                              token=self.metricsToken)

    def talkAndHangUp(self, args):
        self.client.waitFor(lambda m: m.get("state") == "confirmed", 20)
        self.step("confirmed")
        time.sleep(args.talk)
        self.client.command({"type": "hangup"})
        self.step("client hangup sent")
        self.client.waitFor(lambda m: m.get("state") == "dropped", 10)
        self.step("client saw dropped")
        self.finishClient()
        self.finishPhone()
        self.result["ok"] = True

    def linkrtcLines(self):
        with open(self.linkrtc.log, errors="replace") as f:
            return f.read().splitlines()


def scenarioClientCallsPhone(run, args):
    run.startLinkRTC()
    run.startRegisteredBaresip()
    run.startClient("--codec", "pcmu", "--dial", "bob")
    run.result["calling"] = run.client.waitFor("calling", 10)
    run.client.waitFor("answer", 20)
    run.step("answer")
    run.talkAndHangUp(args)


def scenarioPhoneCallsClient(run, args):
    run.startLinkRTC()
    run.startClient("--codec", "pcmu")
    run.startRegisteredBaresip("-e", f"/dial sip:alice@127.0.0.1:{run.linkrtc.sipPort}")
    run.talkAndHangUp(args)


def scenarioPageCallsPhone(run, args):
    run.startLinkRTC()
    run.startRegisteredBaresip(seconds=60)
    pageTone = run.peerPath("page880.wav")
    writeTone(pageTone, PAGE_TONE, 30, 48000)
    launchChromium(run, pageTone)
    alice = loginPage(run, "alice")
    alice.fill("#to", "bob")
    alice.click("#call")
    run.step("page dialled bob")
    alice.wait_for_selector('#callPanel[data-state="open"]', timeout=20000)
    run.step("confirmed")
    time.sleep(args.talk)
    run.result["pageHeard"] = alice.evaluate(REMOTE_FREQUENCY)
    run.result["stats"] = alice.evaluate("window.softphone.stats()")
    alice.click("#hangup")
    alice.wait_for_selector('#calllog li[data-state="dropped"]', timeout=10000)
    run.result["calllog"] = alice.inner_text("#calllog")
    run.step("page hung up", log=run.result["calllog"])
    run.finishPhone()
    run.result["ok"] = True


def scenarioMessages(run, args):
    run.startLinkRTC()
    run.startClient("--codec", "pcmu")
    port = freePort(both=True)
    config = run.configureBaresip(port, "")
    with open(os.path.join(config, "config"), "a") as f:
        f.write("module contact.so\n")
    with open(os.path.join(config, "contacts"), "w") as f:
        f.write(f'"alice" <sip:alice@127.0.0.1:{run.linkrtc.sipPort}>\n')
    with open(os.path.join(config, "accounts"), "w") as f:
        f.write(f"<sip:bob@127.0.0.1:{run.linkrtc.sipPort}>;auth_pass={PASSWORD};"
                "regint=60;audio_codecs=pcmu\n")
    run.spawnBaresip(config, "-t", "40")
    if not run.waitForBaresip(r"200 OK.*\[\d+ binding", 10):
        raise AssertionError("baresip did not register:\n" + run.baresipText()[-2000:])
    run.step("baresip registered")
    # baresip's UI is its console: what it shows (the message it gets)
    # goes to the address the last command came from, this socket.
    console = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    console.bind(("127.0.0.1", 0))
    console.settimeout(0.5)
    console.sendto(b"/message hello alice from bob\n", ("127.0.0.1", run.consPort))
    run.step("baresip command", text="/message hello alice from bob")
    run.result["clientGot"] = run.client.waitFor("message", 10)
    run.step("client got the message")
    run.client.command({"type": "message", "to": "bob", "text": "hi bob, alice here",
                        "ref": "m1"})
    run.result["clientSent"] = run.client.waitFor(
        lambda m: m.get("type") in ("message-sent", "error"), 10)
    shown = b""
    deadline = time.monotonic() + 10
    while b"hi bob, alice here" not in shown and time.monotonic() < deadline:
        try:
            shown += console.recvfrom(65536)[0]
        except socket.timeout:
            pass
    run.result["phoneShown"] = shown.decode(errors="replace")[-1000:]
    run.result["phoneGot"] = b"hi bob, alice here" in shown
    console.close()
    run.step("phone got the message")
    run.result["baresipLog"] = run.baresipText()[-3000:]
    run.result["registrarLog"] = [line for line in run.linkrtcLines()
                                  if "registrar:" in line or "MESSAGE" in line][-10:]
    run.result["ok"] = True


def startDerivedPhone(run, *baresipArgs):
    """
    baresip registered as dave with credentials derived from LinkRTC's
    auth secret (as C{linkrtc token dave --sip-password} prints them).
    """
    creds = sipCredentials(AUTH_SECRET, DERIVED_USER, 600)
    run.result["sipUsername"] = creds["username"]
    run.step("derived credentials", username=creds["username"])
    run.startRegisteredBaresip(*baresipArgs, user=DERIVED_USER, authUser=creds["username"],
                               password=creds["password"])


def clientToken():
    """@return: alice's access token (outgoing calls)."""
    return mintToken("alice", {"default": AUTH_SECRET}, time.time(),
                     grants=Grants(outgoing=True))


def scenarioDerivedClientCallsPhone(run, args):
    run.startLinkRTC(secret=AUTH_SECRET)
    startDerivedPhone(run)
    run.startClient("--codec", "pcmu", "--token", clientToken(), "--dial", DERIVED_USER)
    run.result["calling"] = run.client.waitFor("calling", 10)
    run.client.waitFor("answer", 20)
    run.step("answer")
    run.talkAndHangUp(args)


def scenarioDerivedPhoneCallsClient(run, args):
    run.startLinkRTC(secret=AUTH_SECRET)
    run.startClient("--codec", "pcmu", "--token", clientToken())
    startDerivedPhone(run)
    # Dialled once registered: an unregistered derived user is a stranger
    # (not challenged), a registered one must authenticate its INVITE.
    run.baresipCommand(f"/dial sip:alice@127.0.0.1:{run.linkrtc.sipPort}\n")
    run.talkAndHangUp(args)


SCENARIOS = {
    "messages": scenarioMessages,
    "client-calls-phone": scenarioClientCallsPhone,
    "phone-calls-client": scenarioPhoneCallsClient,
    "page-calls-phone": scenarioPageCallsPhone,
    "derived-client-calls-phone": scenarioDerivedClientCallsPhone,
    "derived-phone-calls-client": scenarioDerivedPhoneCallsClient,
}


def main():
    parser = driverParser(SCENARIOS, deadline=75.0)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds of audio")
    args = parser.parse_args()
    run = RegistrarRun(args.out)
    runScenario(run, SCENARIOS[args.scenario], args, run.failed, run.finish)


if __name__ == "__main__":
    main()
