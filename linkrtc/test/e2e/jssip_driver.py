"""
A JsSIP softphone (the npm package C{jssip@3}, bundled by L{jsbundle}) in
real headless Chromium registers with LinkRTC over SIP over WebSocket
(RFC 7118, C{ws://127.0.0.1:HTTP/sip}, subprotocol C{sip}) with digest
authentication, and talks to baresip (registered over UDP) through a
running C{twistd -n linkrtc --media bridge}; prints what happened as one
JSON line (the last line of stdout).

The page is served by a local HTTP server on another port (its origin is
in LinkRTC's C{allowed-origins}); nothing comes from a CDN. JsSIP's
node_modules directory is C{$LINKRTC_JSSIP_MODULES} (default
C{/tmp/linkrtc-npm/node_modules}, where C{.ci/run} installs it).

Chromium's fake microphone plays 880 Hz, baresip 440 Hz; the page's FFT
of the remote track and baresip's recording are both checked.

Run inside a network namespace that has only loopback
(C{test_jssip_e2e} does C{unshare --net}); the script brings C{lo} up.

Scenarios:
  - C{jssip-calls-phone}: the page (carol) calls C{sip:bob@127.0.0.1};
    baresip answers by itself; tones both ways; the page hangs up.
  - C{phone-calls-jssip}: baresip dials C{sip:carol@LINKRTC}; the page
    answers; tones both ways; the page hangs up.
  - C{derived-calls-trunk}: LinkRTC has C{--auth-secret} and baresip as
    its trunk (not registered, answering by itself); JsSIP registers as
    erin (in no C{[sip-users]}) with SIP credentials derived from the
    secret (C{authorization_user}), first without C{outgoing}: its call
    to C{5551234} is refused (403); then again with C{outgoing}: the
    call reaches baresip through the trunk; tones both ways.
  - C{jssip-dtmf-hold}: as C{jssip-calls-phone}, then the page sends DTMF
    5 (C{session.sendDTMF}, SIP INFO) and baresip must log the RFC 4733
    event; the page holds (C{session.hold()}: a sendonly re-INVITE) and
    must get our recvonly answer, then resumes (C{unhold()}, sendrecv
    answer); the far side's re-INVITEs show in LinkRTC's log (C{SIP side
    held}, C{resumed}); tones both ways (baresip's recording stops at
    the hold's re-INVITE, which restarts its player: the audio to it
    after the resume is seen in the CDR's RTP counts).
  - C{called-dtmf-hold}: the same when baresip dials carol (our WebRTC
    SDP was the offer: the answers to JsSIP's re-offers keep the
    C{passive} DTLS role Chromium's C{active} answer gave us).
"""

import functools
import http.server
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(HERE))))

from linkrtc.signalling.tokens import Grants, mintToken, sipCredentials  # noqa: E402
from linkrtc.test.e2e.browser_driver import CHROMIUM_FLAGS, PAGE_TONE, digitsHeard  # noqa: E402
from linkrtc.test.e2e.drivers import driverParser, runScenario, writeTone  # noqa: E402
from linkrtc.test.e2e.harness import LinkRTCProcess, freePort  # noqa: E402
from linkrtc.test.e2e.jsbundle import bundle  # noqa: E402
from linkrtc.test.e2e.registrar_driver import (  # noqa: E402
    AUTH_SECRET,
    PASSWORD,
    RegistrarRun,
    metric,
)

CAROL_PASSWORD = "car0l-secret"

#: Where .ci/run installs JsSIP (npm install --prefix /tmp/linkrtc-npm jssip@3).
DEFAULT_MODULES = "/tmp/linkrtc-npm/node_modules"

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>JsSIP</title></head>
<body><audio id="remote" autoplay></audio>
<script src="jssip.js"></script>
<script>
window.phone = {state: {}, events: []};
const MEDIA = {mediaConstraints: {audio: true, video: false},
               pcConfig: {iceServers: []}, sessionTimersExpires: 3600};
function note(what) { phone.events.push(what); }
function attach(session) {
  phone.session = session;
  session.on('peerconnection', () => note('peerconnection'));
  session.on('progress', () => note('progress'));
  session.on('accepted', () => note('accepted'));
  session.on('confirmed', () => { phone.state.confirmed = true; note('confirmed'); });
  session.on('ended', (e) => { phone.state.ended = e.cause; note('ended ' + e.cause); });
  session.on('failed', (e) => { phone.state.failed = e.cause; note('failed ' + e.cause); });
  session.on('hold', () => note('hold'));
  session.on('unhold', () => note('unhold'));
  session.on('newDTMF', (e) => note('dtmf ' + e.originator + ' ' + e.dtmf.tone));
}
// The direction of our last answer/offer as the browser applied it.
window.remoteDirection = function () {
  const pc = phone.session && phone.session.connection;
  const sdp = pc && pc.remoteDescription && pc.remoteDescription.sdp;
  const found = sdp && sdp.match(/a=(sendrecv|sendonly|recvonly|inactive)/);
  return found ? found[1] : null;
};
window.startPhone = function (cfg) {
  const socket = new JsSIP.WebSocketInterface(cfg.ws);
  const conf = {sockets: [socket], uri: cfg.uri, password: cfg.password,
                register: true, session_timers: false};
  if (cfg.authorizationUser) conf.authorization_user = cfg.authorizationUser;
  const ua = new JsSIP.UA(conf);
  phone.ua = ua;
  ua.on('connected', () => note('ws connected'));
  ua.on('disconnected', () => note('ws disconnected'));
  ua.on('registered', () => { phone.state.registered = true; note('registered'); });
  ua.on('registrationFailed', (e) => { phone.state.registrationFailed = e.cause;
                                       note('registrationFailed ' + e.cause); });
  ua.on('newRTCSession', (e) => {
    attach(e.session);
    if (e.originator === 'remote') {
      phone.state.incoming = true;
      note('incoming');
      e.session.answer(MEDIA);
    }
  });
  ua.start();
};
window.callTo = function (target) { phone.ua.call(target, MEDIA); };
window.stopPhone = function () {
  phone.ua.stop();
  phone.state = {};
  phone.session = null;
};
window.hangUp = function () { phone.session.terminate(); };
window.heard = async function () {
  const pc = phone.session && phone.session.connection;
  if (!pc) return null;
  const tracks = pc.getReceivers().map((r) => r.track).filter((t) => t && t.kind === 'audio');
  if (!tracks.length) return null;
  const stream = new MediaStream(tracks);
  const audio = document.getElementById('remote');
  audio.srcObject = stream;
  audio.muted = true;
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 16384;
  ctx.createMediaStreamSource(stream).connect(analyser);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const data = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(data);
  const binHz = ctx.sampleRate / analyser.fftSize;
  let best = Math.ceil(50 / binHz);
  for (let i = best; i < data.length; i++) if (data[i] > data[best]) best = i;
  const result = {dominant: best * binHz, db: data[best]};
  await ctx.close();
  return result;
};
</script></body></html>
"""


def users(pageOrigin):
    """LinkRTC's config: bob (baresip, MD5) and carol (JsSIP), the page's origin allowed."""
    return f"""
sip-min-expires = 60
sip-digest-algorithms = ["MD5"]
allowed-origins = ["{pageOrigin}"]

[sip-users]
bob = "{PASSWORD}"
carol = "{CAROL_PASSWORD}"
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


class JsSIPRun(RegistrarRun):
    """baresip registered as bob over UDP, JsSIP as carol over WebSocket, in Chromium."""

    browser = playwright = pageServer = None

    def servePage(self):
        """Write the page and the JsSIP bundle, serve them on 127.0.0.1."""
        modules = os.environ.get("LINKRTC_JSSIP_MODULES", DEFAULT_MODULES)
        site = os.path.join(self.out, "site")
        os.makedirs(site, exist_ok=True)
        with open(os.path.join(site, "jssip.js"), "w") as f:
            f.write(bundle(modules, "jssip", "JsSIP"))
        with open(os.path.join(site, "index.html"), "w") as f:
            f.write(PAGE)
        handler = functools.partial(QuietHandler, directory=site)
        self.pageServer = http.server.ThreadingHTTPServer(("127.0.0.1", freePort(both=True)),
                                                          handler)
        threading.Thread(target=self.pageServer.serve_forever, daemon=True).start()
        self.pageOrigin = f"http://127.0.0.1:{self.pageServer.server_address[1]}"
        self.step("page served", origin=self.pageOrigin)

    def startLinkRTC(self, secret=None, more=""):
        """
        @param secret: the C{--auth-secret}, or C{None}.
        @param more: TOML appended to the configuration (a trunk table).
        """
        self.cdr = os.path.join(self.out, "cdr.jsonl")
        config = os.path.join(self.out, "users.toml")
        with open(config, "w") as f:
            f.write(users(self.pageOrigin) + more)
        options = ()
        if secret:
            options = ("--auth-secret", secret)
            self.metricsToken = mintToken("e2e", {"default": secret}, time.time(),
                                          grants=Grants(metrics=True))
        self.linkrtc = LinkRTCProcess("--media", "bridge", "--ice-address", "127.0.0.1",
                                      "--config", config, "--cdr", self.cdr,
                                      "--ring-timeout", "20", *options)
        self.linkrtc.start(timeout=20)
        self.step("linkrtc started", sip=self.linkrtc.sipPort, http=self.linkrtc.httpPort)

    def startPhonePage(self, user="carol", password=CAROL_PASSWORD, authorizationUser=None):
        """
        Chromium (880 Hz microphone) opens the page; JsSIP registers as
        C{user} (carol), with C{authorizationUser} as its digest username
        if given.
        """
        from playwright.sync_api import sync_playwright

        tone = self.peerPath("page880.wav")
        writeTone(tone, PAGE_TONE, 30, 48000)
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, timeout=30000,
            args=CHROMIUM_FLAGS + [f"--use-file-for-fake-audio-capture={tone}",
                                   "--autoplay-policy=no-user-gesture-required"])
        self.console = []
        self.page = self.browser.new_page()
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"[:300]))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.goto(self.pageOrigin + "/index.html", timeout=15000)
        self.registerPhone(user, password, authorizationUser)

    def registerPhone(self, user, password, authorizationUser=None):
        """JsSIP (a new UA) registers as C{user}."""
        self.page.evaluate("(cfg) => window.startPhone(cfg)", {
            "ws": f"ws://127.0.0.1:{self.linkrtc.httpPort}/sip",
            "uri": f"sip:{user}@127.0.0.1", "password": password,
            "authorizationUser": authorizationUser})
        self.waitPage("phone.state.registered || phone.state.registrationFailed", 15)
        state = self.page.evaluate("phone.state")
        if not state.get("registered"):
            raise AssertionError(f"JsSIP did not register: {state}")
        self.step("jssip registered")

    def waitPage(self, expression, timeout):
        self.page.wait_for_function(f"() => Boolean({expression})", timeout=timeout * 1000)

    def talkAndHangUp(self, args):
        self.waitPage("phone.state.confirmed || phone.state.failed", 20)
        if not self.page.evaluate("phone.state.confirmed"):
            raise AssertionError(f"the call failed: {self.page.evaluate('phone.events')}")
        self.step("confirmed")
        time.sleep(args.talk)
        self.result["pageHeard"] = self.page.evaluate("window.heard()")
        self.step("page heard", **(self.result["pageHeard"] or {}))
        self.page.evaluate("window.hangUp()")
        self.waitPage("phone.state.ended", 10)
        self.step("page hung up")
        self.result["phoneEnded"] = self.waitForBaresip(r"Call with \S+ terminated", 5)
        self.result["pageEvents"] = self.page.evaluate("phone.events")
        self.finishBaresip()
        self.result["cdrs"] = self.cdrs()
        self.result["registrarLog"] = [line for line in self.linkrtcLines()
                                       if "registrar:" in line][-10:]
        self.result["registrations"] = metric(self.linkrtc.httpPort,
                                              "linkrtc_sip_registrations_total",
                                              token=self.metricsToken)
        self.result["ok"] = True

    def failed(self):
        super().failed()
        try:
            self.result["pageEvents"] = self.page.evaluate("phone.events")
        except Exception:
            pass

    def cleanup(self):
        self.result["console"] = getattr(self, "console", [])[-60:]
        for closer in (lambda: self.browser and self.browser.close(),
                       lambda: self.playwright and self.playwright.stop(),
                       lambda: self.pageServer and self.pageServer.shutdown()):
            try:
                closer()
            except Exception as e:
                self.result["errors"].append(f"cleanup: {e}")
        super().cleanup()


def jssipCallsPhone(run):
    """LinkRTC, baresip (bob) and the page (carol) start; the page calls bob."""
    run.servePage()
    run.startLinkRTC()
    run.startRegisteredBaresip()
    run.startPhonePage()
    run.page.evaluate("window.callTo('sip:bob@127.0.0.1')")
    run.step("jssip calling bob")


def phoneCallsJsSIP(run):
    """LinkRTC and the page (carol) start; baresip (bob) starts and dials carol."""
    run.servePage()
    run.startLinkRTC()
    run.startPhonePage()
    run.startRegisteredBaresip("-e", f"/dial sip:carol@127.0.0.1:{run.linkrtc.sipPort}")


def scenarioJsSIPCallsPhone(run, args):
    jssipCallsPhone(run)
    run.talkAndHangUp(args)


def scenarioPhoneCallsJsSIP(run, args):
    phoneCallsJsSIP(run)
    run.talkAndHangUp(args)


TRUNK = """
[[trunk]]
name = "baresip"
proxy = "sip:127.0.0.1:{port}"
register = false
"""


def scenarioDerivedCallsTrunk(run, args):
    run.servePage()
    port = freePort(both=True)
    config = run.configureBaresip(port, "")
    with open(os.path.join(config, "accounts"), "w") as f:  # answers sip:5551234@
        f.write("<sip:5551234@127.0.0.1>;regint=0;audio_codecs=pcmu;answermode=auto\n")
    run.spawnBaresip(config, "-t", "50")
    if not run.waitForBaresip(r"baresip is ready|Listening on", 10):
        raise AssertionError("baresip did not start:\n" + run.baresipText()[-2000:])
    run.step("baresip (the trunk) listening", port=port)
    run.startLinkRTC(secret=AUTH_SECRET, more=TRUNK.format(port=port))
    denied = sipCredentials(AUTH_SECRET, "erin", 600)
    run.startPhonePage("erin", denied["password"], denied["username"])
    run.page.evaluate("window.callTo('sip:5551234@127.0.0.1')")
    run.step("jssip calling 5551234 without outgoing", username=denied["username"])
    run.waitPage("phone.state.confirmed || phone.state.failed", 15)
    run.result["deniedState"] = run.page.evaluate("phone.state")
    run.result["refusals"] = [line for line in run.linkrtcLines()
                              if "may not place outgoing calls" in line][-3:]
    run.page.evaluate("window.stopPhone()")
    run.step("jssip stopped", state=run.result["deniedState"])
    allowed = sipCredentials(AUTH_SECRET, "erin", 600, outgoing=True)
    run.registerPhone("erin", allowed["password"], allowed["username"])
    run.page.evaluate("window.callTo('sip:5551234@127.0.0.1')")
    run.step("jssip calling 5551234 with outgoing", username=allowed["username"])
    run.talkAndHangUp(args)


def dtmfHoldResume(run, args):
    """The call is up: DTMF 5 by INFO, hold, unhold, then talk and hang up."""
    run.waitPage("phone.state.confirmed || phone.state.failed", 20)
    if not run.page.evaluate("phone.state.confirmed"):
        raise AssertionError(f"the call failed: {run.page.evaluate('phone.events')}")
    # baresip's recording stops at a re-INVITE (it restarts its player):
    # what it records is what it heard before the hold.
    time.sleep(3.0)
    run.page.evaluate("phone.session.sendDTMF('5')")
    run.step("dtmf sent (INFO)")
    # The key's end (RFC 4733 end bit) before the hold stops RTP to baresip.
    run.waitForBaresip(r"received event: '5' \(end=1\)|received DTMF: '5'", 5)
    run.result["phoneDigits"] = digitsHeard(run.baresipText())
    # RFC 4733 from the browser needs telephone-event in our WebRTC SDP.
    run.result["canInsertDTMF"] = run.page.evaluate(
        "phone.session.connection.getSenders().some((s) => s.dtmf && s.dtmf.canInsertDTMF)")
    directions = {}
    for action, wanted in (("hold", "recvonly"), ("unhold", "sendrecv")):
        run.page.evaluate(f"phone.session.{action}()")
        run.waitPage(f"window.remoteDirection() === '{wanted}' || phone.state.ended"
                     " || phone.state.failed", 10)
        directions[action] = run.page.evaluate("window.remoteDirection()")
        run.result["remoteSetup"] = run.page.evaluate(
            "(phone.session.connection.remoteDescription.sdp.match(/a=setup:(\\w+)/) || [])[1]")
        run.step(f"jssip {action}", answer=directions[action], setup=run.result["remoteSetup"])
        time.sleep(1.5)
    run.result["directions"] = directions
    run.result["holdLines"] = [line.split(": ", 1)[-1] for line in run.linkrtcLines()
                               if "SIP side held" in line or "SIP side resumed" in line
                               or "re-offer refused" in line]
    run.talkAndHangUp(args)


def scenarioDtmfHold(run, args):
    jssipCallsPhone(run)
    dtmfHoldResume(run, args)


def scenarioCalledDtmfHold(run, args):
    phoneCallsJsSIP(run)
    dtmfHoldResume(run, args)


SCENARIOS = {
    "jssip-dtmf-hold": scenarioDtmfHold,
    "called-dtmf-hold": scenarioCalledDtmfHold,
    "jssip-calls-phone": scenarioJsSIPCallsPhone,
    "phone-calls-jssip": scenarioPhoneCallsJsSIP,
    "derived-calls-trunk": scenarioDerivedCallsTrunk,
}


def main():
    parser = driverParser(SCENARIOS, deadline=60.0)
    parser.add_argument("--talk", type=float, default=4.0, help="seconds of audio")
    args = parser.parse_args()
    run = JsSIPRun(args.out)
    runScenario(run, SCENARIOS[args.scenario], args, run.failed, run.finish, catch=Exception)


if __name__ == "__main__":
    main()
