/*
 * linkrtc.js: the LinkRTC browser SDK (an ES module, no dependencies).
 *
 * LinkRTC serves it at /linkrtc.js. It speaks the WebSocket protocol of
 * docs/signalling.rst and handles the microphone, the RTCPeerConnection and
 * the remote audio. docs/client.rst is its reference.
 *
 *   import LinkRTC from "/linkrtc.js";          // or: import { Device } from "/linkrtc.js";
 *   const device = new LinkRTC.Device("wss://gw.example.com/ws", { client: "alice" });
 *   device.on("incoming", (call) => call.accept());
 *   device.register();
 *
 * Signalling is non-trickle: every SDP is sent once ICE gathering is complete.
 */

export const version = "0.1.0";

const DIGITS = /^[0-9*#A-D]{1,32}$/;

/**
 * Milliseconds an outgoing call that rings with a 183 waits for the far
 * end's early media (its `answer`) before playing the local ringback.
 */
const EARLY_MEDIA_GRACE = 1000;

/**
 * WebSocket close codes after which reconnecting cannot help
 * (docs/security.rst): 4401 anonymous client refused (protected mode),
 * 4429 too many authentication failures.
 */
const FINAL_CLOSE_CODES = { 4401: 401, 4429: 429 };

/** Words for a call's cause (a SIP status or the server's words). */
const CAUSES = {
  180: "ringing",
  200: "call ended normally",
  400: "the request was malformed",
  401: "authentication failed (the token is missing, wrong or expired)",
  403: "refused",
  404: "no such number or call",
  408: "no answer in time, or the media stopped",
  409: "the call cannot do that in its present state",
  410: "the number is gone",
  429: "too many attempts; try again later",
  480: "nobody is reachable under that name",
  481: "the call no longer exists",
  484: "the number is incomplete",
  486: "busy",
  487: "cancelled by the caller",
  488: "the audio could not be set up (media failure)",
  500: "internal error in LinkRTC",
  502: "the far end could not be reached (bad gateway)",
  503: "the service is unavailable or unreachable",
  504: "the far end did not answer in time",
  603: "declined",
};

/**
 * Describe a cause in words a person understands.
 * @param {number|string|null} cause  a SIP status, or words from the server.
 * @returns {string}
 */
export function describeCause(cause) {
  if (cause === null || cause === undefined || cause === "") return "";
  if (typeof cause === "string" && !/^\d{3}$/.test(cause)) return cause;
  const code = Number(cause);
  if (CAUSES[code]) return CAUSES[code];
  if (code >= 200 && code < 300) return "call ended normally";
  if (code >= 300 && code < 400) return `redirected (${code})`;
  if (code >= 400 && code < 500) return `the call failed (${code})`;
  if (code >= 500 && code < 600) return `server failure (${code})`;
  if (code >= 600) return `refused everywhere (${code})`;
  return String(cause);
}

/** An error from LinkRTC (an `error` message) or from the SDK itself. */
export class LinkRTCError extends Error {
  /**
   * @param {number} code  SIP-like code (400, 401, 403, 404, 409, 500), or 0 for local faults.
   * @param {string} message
   * @param {object} [extra]  {field, call, cause}
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "LinkRTCError";
    this.code = code;
    this.field = extra.field;
    this.call = extra.call;
    this.cause = extra.cause;
  }

  /** The error in words for people. */
  get description() {
    const base = CAUSES[this.code];
    return base ? `${base}: ${this.message}` : this.message;
  }
}

/** A small event emitter: on(event, fn), off(event, fn), once(event, fn). */
export class Emitter {
  constructor() {
    this._handlers = new Map();
  }

  on(event, fn) {
    if (!this._handlers.has(event)) this._handlers.set(event, []);
    this._handlers.get(event).push(fn);
    return this;
  }

  off(event, fn) {
    const list = this._handlers.get(event);
    if (!list) return this;
    if (fn === undefined) {
      this._handlers.delete(event);
    } else {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    }
    return this;
  }

  once(event, fn) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      fn(...args);
    };
    return this.on(event, wrapper);
  }

  emit(event, ...args) {
    const list = this._handlers.get(event);
    if (!list) return false;
    for (const fn of list.slice()) {
      try {
        fn(...args);
      } catch (e) {
        // A listener's fault must not break the SDK.
        setTimeout(() => { throw e; });
      }
    }
    return list.length > 0;
  }
}

/** @returns {boolean} true when the SDP has an enabled video stream (m=video, port not 0). */
function hasVideo(sdp) {
  return typeof sdp === "string" && /^m=video [1-9]/m.test(sdp);
}

/** Decline the offer's video (the answer's video stream is inactive: no camera, nothing received). */
function declineVideo(pc) {
  for (const transceiver of pc.getTransceivers()) {
    if (transceiver.receiver.track && transceiver.receiver.track.kind === "video" && !transceiver.stopped) {
      transceiver.direction = "inactive";
    }
  }
}

function waitForIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (complete) => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve(complete);
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done(true);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * One call. Made by the Device (`incoming` event, or `device.connect()`).
 *
 * Properties: id, direction ("incoming"|"outgoing"), from, to, state
 * ("pending", "ringing", "connecting", "open", "resuming", "closed"), onHold, cause,
 * peerConnection, localStream, remoteStream, video (true when the call
 * sends and receives video: the Device's `video` option, or `video` given to
 * accept()/connect(); an incoming call only when its offer has video),
 * remoteVideoStream (the far end's video, a MediaStream, or null).
 *
 * Events: ringing, accept, disconnect({cause, reason, local}), reject,
 * dtmf(digits), hold(onHold: boolean), unhold, mute(muted), state(state,
 * cause), answer(sdp), transfer({status, reason}) (progress of transfer(to)),
 * trace(line), error(LinkRTCError), warning(text),
 * video(stream) (the far end's video arrived: a MediaStream, also in
 * remoteVideoStream; shown in the Device's videoElement if it has one).
 */
export class Call extends Emitter {
  constructor(device, { id = null, direction, from = null, to = null, offer = null, ref = null }) {
    super();
    this.device = device;
    this.id = id;
    this.direction = direction;
    this.from = from;
    this.to = to;
    this.ref = ref;
    this.offer = offer;
    this.state = "pending";
    this.serverState = null;
    this.onHold = false;
    this.cause = null;
    this.peerConnection = null;
    this.localStream = null;
    this.remoteStream = null;
    this.remoteVideoStream = null;
    this.video = !!device.options.video && (direction === "outgoing" || hasVideo(offer));
    this._muted = false;
    this._ownsStream = false;
    this._dropTimer = null;
    this._pendingAnswer = null;
    this._earlyMedia = false;
    this._ringback = null;
    this._ringbackTimer = null;
  }

  /**
   * An outgoing call rings with no early media from the far end: play a
   * local ringback (WebAudio) until early media, the answer or the end.
   * The tone is the Device's `ringback` option: {frequencies, cadence}
   * (Hz; seconds on, off, ...), default 440+480 Hz, 2 s on 4 s off; false: none.
   */
  _startRingback() {
    const plan = this.device.options.ringback;
    if (!plan || this._ringback || this._earlyMedia || this.direction !== "outgoing") return;
    const AudioContextClass = globalThis.AudioContext || globalThis.webkitAudioContext;
    if (!AudioContextClass) return;
    const { frequencies = [440, 480], cadence = [2, 4] } = plan === true ? {} : plan;
    try {
      const context = new AudioContextClass();
      // Created outside a user gesture (an autoplay policy) it may start suspended.
      if (context.state === "suspended" && context.resume) context.resume().catch(() => {});
      const gain = context.createGain();
      gain.gain.value = 0;
      gain.connect(context.destination);
      const oscillators = frequencies.map((frequency) => {
        const oscillator = context.createOscillator();
        oscillator.frequency.value = frequency;
        oscillator.connect(gain);
        oscillator.start();
        return oscillator;
      });
      const period = cadence.reduce((a, b) => a + b, 0);
      const level = 0.1 / Math.max(1, frequencies.length);
      const schedule = (from) => {
        let t = from;
        cadence.forEach((seconds, i) => {
          gain.gain.setValueAtTime(i % 2 === 0 ? level : 0, t);
          t += seconds;
        });
      };
      let next = context.currentTime;
      schedule(next);
      const timer = setInterval(() => { next += period; schedule(next); }, period * 1000);
      this._ringback = { context, oscillators, timer };
      this.emit("ringback", true, this);
    } catch (e) {
      this.emit("warning", `no local ringback: ${e.message || e}`);
    }
  }

  _stopRingback() {
    clearTimeout(this._ringbackTimer);
    this._ringbackTimer = null;
    const ringback = this._ringback;
    if (!ringback) return;
    this._ringback = null;
    clearInterval(ringback.timer);
    for (const oscillator of ringback.oscillators) {
      try { oscillator.stop(); } catch (e) { /* already stopped */ }
    }
    ringback.context.close().catch(() => {});
    this.emit("ringback", false, this);
  }

  /** @returns {boolean} true while the local ringback plays. */
  get ringbackPlaying() {
    return this._ringback !== null;
  }

  /** @returns {boolean} true while the call has not ended. */
  get active() {
    return this.state !== "closed";
  }

  /**
   * Pick the call up again after the connection to LinkRTC was lost (a
   * page reload, a network change): a fresh RTCPeerConnection offers, the
   * `resume` message carries the offer, the `answer` completes it. Called
   * by the Device when `registered` lists the call. @returns {Promise<void>}
   */
  async _resume() {
    this.state = "connecting";
    try {
      const pc = await this._setupMedia();
      this._attachMicrophone(pc);
      await pc.setLocalDescription(await pc.createOffer());
      const sdp = await this._gatheredSdp(pc);
      if (!this.active) return;
      this.device._send({ type: "resume", call: this.id, sdp });
    } catch (e) {
      if (!this.active) return;
      this._fail(e instanceof LinkRTCError ? e : new LinkRTCError(0, e.message || String(e), { call: this.id }));
    }
  }

  /** The connection to LinkRTC is lost but the call may be resumed: drop the media only. */
  _suspend() {
    this._stopMedia();
    this.peerConnection = null;
    this.state = "resuming";
    this.emit("state", "resuming", null);
  }

  /**
   * Answer an incoming call: microphone (and camera with video), SDP answer, `accept`.
   * @param {{video?: boolean}} [options]  video: answer with video (when the
   *   offer has it) or without (the video stream is declined); default: the
   *   Device's `video` option.
   * @returns {Promise<void>}
   */
  async accept(options = {}) {
    if (this.direction !== "incoming") throw new LinkRTCError(0, "only incoming calls can be accepted");
    if (options.video !== undefined) this.video = !!options.video && hasVideo(this.offer);
    if (this.state !== "pending" && this.state !== "ringing") {
      throw new LinkRTCError(409, `the call is ${this.state}`, { call: this.id });
    }
    this.state = "connecting";
    try {
      const pc = await this._setupMedia();
      let sdp;
      if (this.offer) {
        await pc.setRemoteDescription({ type: "offer", sdp: this.offer });
        this._attachMicrophone(pc);
        if (!this.video) declineVideo(pc);
        await pc.setLocalDescription(await pc.createAnswer());
      } else {
        // Offerless INVITE: our offer goes in `accept`; the answer comes as `answer`.
        this._attachMicrophone(pc);
        await pc.setLocalDescription(await pc.createOffer({ offerToReceiveAudio: true }));
      }
      sdp = await this._gatheredSdp(pc);
      if (!this.active) return;
      this.device._send({ type: "accept", call: this.id, sdp });
    } catch (e) {
      if (!this.active) return; // ended meanwhile (cancelled by the caller)
      const error = e instanceof LinkRTCError ? e : new LinkRTCError(0, e.message || String(e), { call: this.id });
      this._fail(error);
      throw error;
    }
  }

  /**
   * Refuse an incoming call.
   * @param {"decline"|"busy"} [reason="decline"]  603 or 486 to the caller.
   */
  reject(reason = "decline") {
    if (!this.active) return;
    this.device._send({ type: "reject", call: this.id, reason });
    this.emit("reject", reason);
    this._expectDrop();
  }

  /** End the call (refuses it before answer, BYE after). Alias: disconnect(). */
  hangup() {
    if (!this.active) return;
    if (this.id !== null) {
      this.device._send({ type: "hangup", call: this.id });
      this._stopMedia();
      this._expectDrop();
    } else {
      // Outbound call whose id has not come yet: end it when `calling` arrives.
      this._hangupWhenKnown = true;
      this._stopMedia();
      this._expectDrop();
    }
  }

  disconnect() {
    this.hangup();
  }

  /**
   * Send DTMF to the SIP side.
   * @param {string} digits  1-32 of 0-9 * # A-D.
   */
  sendDigits(digits) {
    const text = String(digits).toUpperCase();
    if (!DIGITS.test(text)) throw new LinkRTCError(400, "digits must be 1-32 of 0-9 * # A-D", { field: "digits" });
    if (!this.active || this.id === null) throw new LinkRTCError(409, "the call is not connected", { call: this.id });
    this.device._send({ type: "dtmf", call: this.id, digits: text });
  }

  /** Put the call on hold (a re-INVITE to the SIP side). */
  hold() {
    if (!this.active || this.id === null) return;
    this.device._send({ type: "hold", call: this.id });
  }

  /** Take the call off hold. */
  unhold() {
    if (!this.active || this.id === null) return;
    this.device._send({ type: "unhold", call: this.id });
  }

  /**
   * Blind-transfer the far party to another target: LinkRTC REFERs the SIP
   * side to it (RFC 3515). Progress arrives as `transfer` events
   * ({status, reason}: 202 accepted, then 100/180/200... of the new call);
   * a final 2xx ends this call (`disconnect`), a refusal is an `error`
   * (403 when the dial plan refuses the target) and the call stays.
   * @param {string} to  a client name, a registered SIP user or a number.
   */
  transfer(to) {
    const target = String(to);
    if (!/^[\x21-\x7e]{1,512}$/.test(target)) {
      throw new LinkRTCError(400, "to must be printable ASCII without spaces", { field: "to" });
    }
    if (!this.active || this.id === null) throw new LinkRTCError(409, "the call is not connected", { call: this.id });
    this.device._send({ type: "transfer", call: this.id, to: target });
  }

  /**
   * Mute or unmute the microphone (nothing is signalled: silence is sent).
   * @param {boolean} [shouldMute=true]
   */
  mute(shouldMute = true) {
    this._muted = !!shouldMute;
    if (this.localStream) {
      for (const track of this.localStream.getAudioTracks()) track.enabled = !this._muted;
    }
    this.emit("mute", this._muted, this);
  }

  /** @returns {boolean} */
  isMuted() {
    return this._muted;
  }

  /** The RTCPeerConnection's stats, or null before media. @returns {Promise<RTCStatsReport|null>} */
  async getStats() {
    return this.peerConnection ? this.peerConnection.getStats() : null;
  }

  // -- inside the SDK -------------------------------------------------------------

  async _setupMedia() {
    const device = this.device;
    const opts = device.options;
    if (opts.mediaStream) {
      this.localStream = opts.mediaStream;
    } else {
      if (!globalThis.navigator || !navigator.mediaDevices) {
        throw new LinkRTCError(0, "this browser has no microphone access (navigator.mediaDevices)");
      }
      try {
        this.localStream = await navigator.mediaDevices.getUserMedia({
          audio: device.audioConstraints(), video: this.video ? device.videoConstraints() : false,
        });
      } catch (e) {
        throw new LinkRTCError(0, `${this.video ? "microphone or camera" : "microphone"} unavailable: ${e.message || e.name}`);
      }
      this._ownsStream = true;
    }
    for (const track of this.localStream.getAudioTracks()) track.enabled = !this._muted;
    const pc = new RTCPeerConnection({ iceServers: opts.iceServers || [] });
    this.peerConnection = pc;
    pc.addEventListener("track", (event) => {
      const stream = event.streams && event.streams[0] ? event.streams[0] : new MediaStream([event.track]);
      if (event.track.kind === "video") {
        if (!this.video) return; // declined (inactive in our answer)
        this.remoteVideoStream = stream;
        device._showVideo(this, stream);
        this.emit("video", stream);
        return;
      }
      this.remoteStream = stream;
      device._playRemote(this, stream);
    });
    pc.addEventListener("iceconnectionstatechange", () => {
      this.emit("iceconnectionstatechange", pc.iceConnectionState);
      if (pc.iceConnectionState === "failed") {
        this.emit("warning", "the media connection (ICE) failed: no audio can flow");
      }
    });
    return pc;
  }

  _attachMicrophone(pc) {
    for (const track of this.localStream.getAudioTracks()) {
      pc.addTrack(track, this.localStream);
    }
    if (!this.video) return;
    for (const track of this.localStream.getVideoTracks()) {
      pc.addTrack(track, this.localStream);
    }
  }

  async _gatheredSdp(pc) {
    const complete = await waitForIceGathering(pc, this.device.options.gatheringTimeout);
    if (!complete) this.emit("warning", "ICE gathering did not complete in time; sending the candidates found so far");
    return pc.localDescription.sdp;
  }

  _stopMedia() {
    if (this.peerConnection) {
      try {
        this.peerConnection.close();
      } catch (e) {
        // already closed
      }
    }
    if (this.localStream && this._ownsStream) {
      for (const track of this.localStream.getTracks()) track.stop();
    }
    this.device._stopRemote(this);
  }

  _expectDrop() {
    // The server answers with `state` dropped; if it cannot (connection
    // lost), end the call here after a while.
    if (this._dropTimer) return;
    this._dropTimer = setTimeout(() => this._closed(this.cause ?? "ended", true), 5000);
  }

  _fail(error) {
    this.emit("error", error);
    if (this.id !== null && this.device.connected) {
      // Tell the server why: the CDR then records a failure, not a normal end.
      const cause = error.code >= 400 && error.code <= 699 ? error.code : 500;
      const reason = String(error.message || "client failure").replace(/[\x00-\x1f\x7f]/g, " ").slice(0, 256);
      this.device._send({ type: "hangup", call: this.id, cause, reason });
    }
    this._closed(error.message, true);
  }

  _closed(cause, local) {
    if (this.state === "closed") return;
    clearTimeout(this._dropTimer);
    this.state = "closed";
    this.cause = cause;
    this._stopRingback();
    this._stopMedia();
    this.device._forget(this);
    this.emit("disconnect", { cause, reason: describeCause(cause), local: !!local, call: this });
  }

  async _handle(message) {
    switch (message.type) {
      case "state":
        this._state(message.state, message.cause);
        break;
      case "answer":
        await this._answer(message.sdp);
        break;
      case "dtmf":
        this.emit("dtmf", message.digits, this);
        break;
      case "transfer":
        this.emit("transfer", { status: message.status, reason: message.reason }, this);
        break;
      case "trace":
        this.emit("trace", message);
        break;
      case "error":
        this._error(message);
        break;
      default:
        break;
    }
  }

  _state(state, cause) {
    this.serverState = state;
    if (state === "confirmed" && this.state !== "closed") {
      this.state = "open";
      this.device._saveResume();
    }
    if (state === "ringing" && this.state === "pending") this.state = "ringing";
    this.emit("state", state, cause);
    switch (state) {
      case "calling":
        break;
      case "ringing":
        if (cause === 183) {
          // A 183 (Session Progress) brings the far end's early media: its
          // `answer` follows at once. Ring locally only if none comes.
          clearTimeout(this._ringbackTimer);
          this._ringbackTimer = setTimeout(() => this._startRingback(), EARLY_MEDIA_GRACE);
        } else {
          this._startRingback();
        }
        this.emit("ringing", this);
        break;
      case "confirmed":
        this._stopRingback();
        this.emit("accept", this);
        break;
      case "hold":
        this.onHold = true;
        this.emit("hold", true, this);
        break;
      case "unhold":
        this.onHold = false;
        this.emit("unhold", this);
        this.emit("hold", false, this);
        break;
      case "dropped":
        this._closed(cause, false);
        break;
      default:
        break;
    }
  }

  async _answer(sdp) {
    const pc = this.peerConnection;
    if (!pc || !sdp) return;
    if (pc.signalingState !== "have-local-offer") {
      this.emit("warning", "an answer SDP came while no offer was pending; ignored");
      return;
    }
    try {
      await pc.setRemoteDescription({ type: "answer", sdp });
      // The far end's early media (a 183's SDP) or its answer: no local ringback.
      this._earlyMedia = true;
      this._stopRingback();
      this.emit("answer", sdp);
    } catch (e) {
      this._fail(new LinkRTCError(488, `the far end's SDP answer was not usable: ${e.message}`, { call: this.id }));
    }
  }

  _error(message) {
    const error = new LinkRTCError(message.code, message.message, { field: message.field, call: message.call });
    this.emit("error", error);
    // An error about the call's own setup ends it; 409 on hold etc. does not.
    if (message.field === "sdp" || message.field === "resume"
        || (this.id === null && this.direction === "outgoing")) {
      this._closed(message.code, false);
    }
  }
}

/**
 * The connection to LinkRTC for one client name.
 *
 * new Device(url, options): url is the WebSocket URL (ws://HOST:PORT/ws).
 * Options: client (name, required), token (an access token, or a function
 * returning one or a Promise of one, called before every register so a
 * reconnect gets a fresh token; not needed from loopback when the server
 * runs without --auth-secret), trace (false), iceServers ([]),
 * audio (MediaTrackConstraints merged over the defaults
 * echoCancellation/noiseSuppression/autoGainControl false), audioElement
 * (an HTMLAudioElement or a CSS selector; default: one it creates),
 * mediaStream (use this stream instead of getUserMedia), autoRinging (true),
 * reconnect (true), backoff ({initial: 500, max: 30000} milliseconds),
 * gatheringTimeout (10000 ms), WebSocket (constructor, for tests),
 * resume (true: keep the resume token LinkRTC gives in `registered` in
 * sessionStorage, so that after a page reload, or a lost connection, the
 * next register sends it and the calls LinkRTC kept are resumed with a
 * fresh offer), storage (the Storage for it; default sessionStorage),
 * ringback (true: an outgoing call that rings without early media plays
 * 440+480 Hz, 2 s on 4 s off, with WebAudio until the far end's media or
 * answer; {frequencies: [Hz...], cadence: [on, off, ... seconds]} for
 * another country's; false: none), video (false; true or
 * MediaTrackConstraints: calls send the camera and receive the far end's
 * video, VP8 or H.264, when the far end has video), videoElement (an
 * HTMLVideoElement or a CSS selector that shows the far end's video;
 * default none: use the call's `video` event or remoteVideoStream).
 *
 * Events: registered(client), unregistered({reason, willReconnect}),
 * reconnecting({attempt, delay}), incoming(call), resumed(call),
 * error(LinkRTCError), trace(line), message({from, text}) (an instant
 * message), raw(every message).
 */
export class Device extends Emitter {
  constructor(url, options = {}) {
    super();
    if (!url) throw new LinkRTCError(0, "a WebSocket URL is required");
    this.url = url;
    this.options = {
      client: null,
      token: undefined,
      trace: false,
      iceServers: [],
      audio: {},
      audioElement: null,
      mediaStream: null,
      autoRinging: true,
      reconnect: true,
      backoff: { initial: 500, max: 30000 },
      gatheringTimeout: 10000,
      ringback: true,
      WebSocket: globalThis.WebSocket,
      resume: true,
      storage: undefined,
      video: false,
      videoElement: null,
      ...options,
    };
    this.state = "unregistered"; // "connecting", "registered", "reconnecting", "destroyed"
    this.calls = new Map(); // id -> Call
    this._pending = []; // outgoing calls waiting for `calling`
    this._ws = null;
    this._wanted = false;
    this._attempt = 0;
    this._retryTimer = null;
    this._registerWaiters = [];
    this._refCounter = 0;
    this._messageWaiters = new Map(); // ref -> {resolve, reject} of sendMessage
    this._tag = Math.random().toString(36).slice(2, 8);
    this._audioElements = new Map();
  }

  /** @returns {boolean} true while the WebSocket is open. */
  get connected() {
    return !!this._ws && this._ws.readyState === 1;
  }

  /** @returns {string|null} the registered client name. */
  get identity() {
    return this.state === "registered" ? this.options.client : null;
  }

  /**
   * Use another access token from now on (e.g. before the old one
   * expires); re-registers at once when connected.
   * @param {string|function} token
   */
  updateToken(token) {
    this.options.token = token;
    if (this.connected && this._wanted) this._sendRegister();
  }

  /** The getUserMedia video constraints (the `video` option, or true). */
  videoConstraints() {
    return typeof this.options.video === "object" && this.options.video ? this.options.video : true;
  }

  /** The getUserMedia audio constraints. */
  audioConstraints() {
    return { echoCancellation: false, noiseSuppression: false, autoGainControl: false, ...this.options.audio };
  }

  /**
   * Connect and register; keeps reconnecting (with back-off) until
   * unregister(). @returns {Promise<string>} the name, once registered.
   */
  register(client) {
    if (client) this.options.client = client;
    if (!this.options.client) return Promise.reject(new LinkRTCError(400, "a client name is required", { field: "client" }));
    this._wanted = true;
    const promise = new Promise((resolve, reject) => this._registerWaiters.push({ resolve, reject }));
    if (this.connected) {
      this._sendRegister();
    } else if (!this._ws) {
      this._open();
    }
    return promise;
  }

  /** Close the connection (ending its calls) and stop reconnecting. */
  unregister() {
    this._wanted = false;
    this._resumeToken = null;
    const storage = this._storage();
    try {
      if (storage) storage.removeItem(this._storageKey());
    } catch (e) {
      // nothing kept
    }
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const ws = this._ws;
    if (ws && this.connected) {
      // Hang up now: LinkRTC would otherwise keep answered calls for a resume.
      for (const call of this.calls.values()) {
        if (call.active && call.id !== null) this._send({ type: "hangup", call: call.id });
      }
    }
    if (ws) {
      this._ws = null;
      ws.onclose = null;
      try {
        ws.close(1000, "unregister");
      } catch (e) {
        // closing anyway
      }
      this._connectionLost("unregistered", false);
    } else if (this.state !== "unregistered") {
      this.state = "unregistered";
      this.emit("unregistered", { reason: "unregistered", willReconnect: false });
    }
  }

  /** unregister() and drop every listener. */
  destroy() {
    this.unregister();
    this.state = "destroyed";
    this._handlers.clear();
  }

  /**
   * Place an outbound call.
   * @param {{to: string, ref?: string, video?: boolean}} params  to: a number or a SIP URI;
   *   video: offer the camera and video (default: the Device's `video` option).
   * @returns {Promise<Call>} once the offer is sent (events follow on the Call).
   */
  async connect(params = {}) {
    const to = params.to;
    if (!to || /\s/.test(to)) throw new LinkRTCError(400, "'to' must be a number or a SIP URI without spaces", { field: "to" });
    if (this.state !== "registered") throw new LinkRTCError(403, "not registered");
    const ref = params.ref || `${this._tag}-${++this._refCounter}`;
    const call = new Call(this, { direction: "outgoing", from: this.options.client, to, ref });
    if (params.video !== undefined) call.video = !!params.video;
    this._pending.push(call);
    try {
      const pc = await call._setupMedia();
      call._attachMicrophone(pc);
      await pc.setLocalDescription(await pc.createOffer());
      const sdp = await call._gatheredSdp(pc);
      if (!call.active) return call;
      call.state = "connecting";
      this._send({ type: "call", to, sdp, ref });
    } catch (e) {
      this._pending = this._pending.filter((c) => c !== call);
      call._fail(e instanceof LinkRTCError ? e : new LinkRTCError(0, e.message));
      throw e;
    }
    return call;
  }

  /**
   * Send an instant message to a client or a registered SIP phone by name
   * (SIP MESSAGE, RFC 3428, on the phone's side).
   * @param {string} to  the name.
   * @param {string} text
   * @returns {Promise<number>} the status (200 delivered, 202 accepted);
   *   rejects with a LinkRTCError (404 unknown, 480 offline, 413 too large...).
   */
  sendMessage(to, text) {
    if (this.state !== "registered") return Promise.reject(new LinkRTCError(403, "not registered"));
    if (!to || typeof text !== "string" || !text) {
      return Promise.reject(new LinkRTCError(400, "a name and a non-empty text are required", { field: "text" }));
    }
    const ref = `${this._tag}-m${++this._refCounter}`;
    return new Promise((resolve, reject) => {
      this._messageWaiters.set(ref, { resolve, reject });
      if (!this._send({ type: "message", to, text, ref })) {
        this._messageWaiters.delete(ref);
        reject(new LinkRTCError(0, "not connected to LinkRTC"));
      }
    });
  }

  // -- the WebSocket ---------------------------------------------------------------

  _open() {
    const WS = this.options.WebSocket;
    if (!WS) throw new LinkRTCError(0, "no WebSocket in this environment");
    this.state = this._attempt ? "reconnecting" : "connecting";
    let ws;
    try {
      ws = new WS(this.url);
    } catch (e) {
      this.emit("error", new LinkRTCError(0, `cannot open ${this.url}: ${e.message}`));
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (ws !== this._ws) return;
      this._sendRegister();
    };
    ws.onmessage = (event) => {
      if (ws !== this._ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (message && typeof message === "object") this._dispatch(message);
    };
    ws.onerror = () => {
      // onclose follows; it reports and reconnects.
    };
    ws.onclose = (event) => {
      if (ws !== this._ws) return;
      this._ws = null;
      const code = event && event.code;
      if (FINAL_CLOSE_CODES[code]) {
        // Refused for good: retrying with the same credentials cannot help.
        const error = new LinkRTCError(FINAL_CLOSE_CODES[code], (event.reason) || describeCause(FINAL_CLOSE_CODES[code]), { field: "token" });
        this._wanted = false;
        this._rejectWaiters(error);
        this.emit("error", error);
        this._connectionLost(error.message, false);
        return;
      }
      const why = code && code !== 1000 && code !== 1005
        ? `the connection to LinkRTC was lost (code ${code})`
        : "the connection to LinkRTC was lost";
      this._connectionLost(why, this._wanted && this.options.reconnect);
      if (this._wanted && this.options.reconnect) this._scheduleReconnect();
    };
  }

  async _sendRegister() {
    const ws = this._ws;
    const message = { type: "register", client: this.options.client, trace: !!this.options.trace };
    let token = this.options.token;
    if (typeof token === "function") {
      try {
        token = await token();
      } catch (e) {
        this.emit("error", new LinkRTCError(0, `could not get a token: ${e.message}`, { field: "token" }));
        token = undefined;
      }
      if (ws !== this._ws) return;
    }
    if (token !== undefined && token !== null && token !== "") message.token = String(token);
    const saved = this._loadResume();
    if (saved && saved.token) message.resume = saved.token;
    this._send(message);
  }

  _connectionLost(reason, willReconnect) {
    // LinkRTC ends every call of a closed connection (480 / BYE).
    // With a resume token, answered calls wait for the next register.
    const wasRegistered = this.state === "registered";
    const saved = willReconnect ? this._loadResume() : null;
    for (const call of [...this.calls.values(), ...this._pending]) {
      if (saved && saved.token && call.state === "open" && call.id !== null) {
        call._suspend();
      } else {
        call._closed("connection to LinkRTC lost", true);
      }
    }
    this._pending = [];
    this.state = willReconnect ? "reconnecting" : "unregistered";
    if (wasRegistered || !willReconnect || this._attempt === 0) {
      this.emit("unregistered", { reason, willReconnect });
    }
    if (!willReconnect) this._rejectWaiters(new LinkRTCError(0, reason));
  }

  _scheduleReconnect() {
    clearTimeout(this._retryTimer);
    const { initial = 500, max = 30000 } = this.options.backoff || {};
    const base = Math.min(max, initial * 2 ** Math.min(this._attempt, 16));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this._attempt += 1;
    this.emit("reconnecting", { attempt: this._attempt, delay });
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (this._wanted && !this._ws) this._open();
    }, delay);
  }

  _rejectWaiters(error) {
    const waiters = this._registerWaiters;
    this._registerWaiters = [];
    for (const w of waiters) w.reject(error);
  }

  _send(message) {
    if (!this.connected) {
      this.emit("error", new LinkRTCError(0, `not connected to LinkRTC; ${message.type} not sent`, { call: message.call }));
      return false;
    }
    this._ws.send(JSON.stringify(message));
    return true;
  }

  _dispatch(message) {
    this.emit("raw", message);
    const waiter = message.ref !== undefined ? this._messageWaiters.get(message.ref) : undefined;
    const call = typeof message.call === "string" ? this.calls.get(message.call) : undefined;
    switch (message.type) {
      case "registered": {
        this.state = "registered";
        // false when trace was asked for but the token has no trace grant.
        this.tracing = !!this.options.trace && message.trace !== false;
        this._attempt = 0;
        const previous = this._loadResume();
        this._resumeToken = message.resume || null;
        this._saveResume();
        const waiters = this._registerWaiters;
        this._registerWaiters = [];
        for (const w of waiters) w.resolve(message.client);
        this.emit("registered", message.client);
        this._resumeCalls(message.calls || [], previous);
        break;
      }
      case "incoming":
        this._incoming(message);
        break;
      case "calling":
        this._calling(message);
        break;
      case "trace":
        this.emit("trace", message);
        if (call) call._handle(message);
        break;
      case "message":
        this.emit("message", { from: message.from, text: message.text });
        break;
      case "message-sent":
        if (waiter) {
          this._messageWaiters.delete(message.ref);
          waiter.resolve(message.status);
        }
        break;
      case "error":
        if (waiter) {
          this._messageWaiters.delete(message.ref);
          waiter.reject(new LinkRTCError(message.code, message.message, { field: message.field }));
          break;
        }
        this._error(message, call);
        break;
      default:
        if (call) call._handle(message);
        break;
    }
  }

  // -- resuming after a reload ---------------------------------------------------

  _storageKey() {
    return `linkrtc.resume:${this.url}:${this.options.client}`;
  }

  _storage() {
    if (!this.options.resume) return null;
    if (this.options.storage !== undefined) return this.options.storage;
    try {
      return globalThis.sessionStorage || null;
    } catch (e) {
      return null; // storage disabled
    }
  }

  /** @returns {{token: string, calls: object}|null} what the last `registered` left. */
  _loadResume() {
    const storage = this._storage();
    if (!storage) return null;
    try {
      return JSON.parse(storage.getItem(this._storageKey()) || "null");
    } catch (e) {
      return null;
    }
  }

  /** Keep the resume token and the answered calls (for their from/to after a reload). */
  _saveResume() {
    const storage = this._storage();
    if (!storage) return;
    const calls = {};
    for (const call of this.calls.values()) {
      if (call.active) calls[call.id] = { direction: call.direction, from: call.from, to: call.to, video: call.video };
    }
    try {
      if (this._resumeToken) {
        storage.setItem(this._storageKey(), JSON.stringify({ token: this._resumeToken, calls }));
      } else {
        storage.removeItem(this._storageKey());
      }
    } catch (e) {
      // storage full or disabled: no resume after a reload
    }
  }

  _resumeCalls(listed, previous) {
    const known = (previous && previous.calls) || {};
    const waiting = new Set();
    for (const info of listed) {
      if (!info || typeof info.call !== "string") continue;
      waiting.add(info.call);
      let call = this.calls.get(info.call);
      if (!call) {
        const saved = known[info.call] || {};
        const direction = saved.direction || (info.direction === "outbound" ? "outgoing" : "incoming");
        call = new Call(this, { id: info.call, direction, from: saved.from || null, to: saved.to || null });
        call.video = !!saved.video; // a video call is resumed with video
        this.calls.set(call.id, call);
      }
      this.emit("resumed", call);
      call._resume();
    }
    for (const call of [...this.calls.values()]) {
      if (call.state === "resuming" && !waiting.has(call.id)) call._closed("connection to LinkRTC lost", true);
    }
    this._saveResume();
  }

  _incoming(message) {
    if (this.calls.has(message.call)) return;
    const call = new Call(this, {
      id: message.call, direction: "incoming", from: message.from, to: message.to, offer: message.sdp || null,
    });
    this.calls.set(call.id, call);
    this.emit("incoming", call);
    if (this.options.autoRinging && call.active) {
      this._send({ type: "ringing", call: call.id });
    }
  }

  _calling(message) {
    let index = this._pending.findIndex((c) => c.ref === message.ref);
    if (index < 0 && message.ref === undefined) index = 0;
    if (index < 0 || index >= this._pending.length) return;
    const [call] = this._pending.splice(index, 1);
    call.id = message.call;
    this.calls.set(call.id, call);
    if (call._hangupWhenKnown) {
      this._send({ type: "hangup", call: call.id });
    }
    call.emit("calling", call);
  }

  _error(message, call) {
    const error = new LinkRTCError(message.code, message.message, { field: message.field, call: message.call });
    if (["client", "token"].includes(message.field) && this.state !== "registered") {
      // A refused register: stop retrying with the same credentials.
      this._wanted = false;
      this._rejectWaiters(error);
    }
    if (call) {
      call._handle(message);
    } else if (!message.call && message.ref !== undefined && this._pending.some((c) => c.ref === message.ref)) {
      // A refused `call` naming its ref (e.g. 403: no outgoing grant).
      const pending = this._pending.find((c) => c.ref === message.ref);
      this._pending = this._pending.filter((c) => c !== pending);
      pending._error(message);
    } else if (!message.call && ["to", "sdp", "ref"].includes(message.field) && this._pending.length) {
      // A refused `call` (it has no id yet): the oldest waiting outbound call.
      const pending = this._pending.shift();
      pending._error(message);
    }
    this.emit("error", error);
  }

  _forget(call) {
    if (call.id !== null && this.calls.get(call.id) === call) this.calls.delete(call.id);
    this._pending = this._pending.filter((c) => c !== call);
    if (this._resumeToken) this._saveResume();
  }

  // -- remote audio ------------------------------------------------------------------

  _audioElementFor(call) {
    let element = this.options.audioElement;
    if (typeof element === "string") element = document.querySelector(element);
    if (element) return element;
    if (!globalThis.document) return null;
    element = this._audioElements.get(call);
    if (!element) {
      element = document.createElement("audio");
      element.autoplay = true;
      element.dataset.linkrtcCall = call.id || "";
      element.style.display = "none";
      document.body.appendChild(element);
      this._audioElements.set(call, element);
    }
    return element;
  }

  _playRemote(call, stream) {
    const element = this._audioElementFor(call);
    if (!element) return;
    element.autoplay = true;
    element.srcObject = stream;
    const played = element.play && element.play();
    if (played && played.catch) {
      played.catch((e) => call.emit("warning", `the browser would not play the audio yet (${e.name}); click the page`));
    }
  }

  _showVideo(call, stream) {
    let element = this.options.videoElement;
    if (typeof element === "string" && globalThis.document) element = document.querySelector(element);
    if (!element) return;
    element.autoplay = true;
    element.muted = true; // the audio plays in the audio element
    element.playsInline = true;
    element.srcObject = stream;
    const played = element.play && element.play();
    if (played && played.catch) played.catch(() => {});
  }

  _stopRemote(call) {
    let video = this.options.videoElement;
    if (typeof video === "string" && globalThis.document) video = document.querySelector(video);
    if (video && call.remoteVideoStream && video.srcObject === call.remoteVideoStream) video.srcObject = null;
    const own = this._audioElements.get(call);
    if (own) {
      own.srcObject = null;
      own.remove();
      this._audioElements.delete(call);
      return;
    }
    let element = this.options.audioElement;
    if (typeof element === "string" && globalThis.document) element = document.querySelector(element);
    if (element && call.remoteStream && element.srcObject === call.remoteStream) element.srcObject = null;
  }
}

const LinkRTC = { Device, Call, Emitter, LinkRTCError, describeCause, version };
if (globalThis.window && !globalThis.LinkRTC) globalThis.LinkRTC = LinkRTC;
export default LinkRTC;
