// The LinkRTC demo softphone: log in, take and place calls, DTMF, a call log,
// and a live ladder of each call's signalling (SIP and WebSocket) to find
// one-way-audio problems. Plain ES module over linkrtc.js; no build step.

import LinkRTC, { describeCause } from "./linkrtc.js";

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);

function webSocketURL() {
  if (params.get("ws")) return params.get("ws");
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

const app = {
  device: null,
  calls: new Map(), // id (or ref) -> record {call, entry, states, traces, ...}
  current: null, // the record shown in the call panel
  ladderRecord: null, // the record shown in the ladder
  traces: new Map(), // call id -> trace lines that came before the call was known
  lastStats: null,
  statsTimer: null,
};
window.softphone = app; // for tests and for poking at from the console

// -- status line and banner ---------------------------------------------------------

function setStatus(state, text) {
  const status = $("#status");
  status.dataset.state = state;
  status.textContent = text;
}

function showBanner(text, kind = "error") {
  const banner = $("#banner");
  banner.textContent = text;
  banner.className = kind;
  banner.hidden = !text;
}

function errorWords(error) {
  const field = error.field;
  switch (error.code) {
    case 400: return `LinkRTC did not understand a message (${field || "?"}): ${error.message}`;
    case 401:
      if (/auth-secret/.test(error.message)) {
        return "LinkRTC lets only this machine log in without a token (it runs without --auth-secret).";
      }
      return "LinkRTC refused the log-in: the token is missing, wrong, expired, or for another name.";
    case 429: return "Too many failed log-ins from this address: wait a minute and try again.";
    case 403:
      if (field === "token") return "The token is wrong: LinkRTC refused the log-in.";
      if (field === "client") return "LinkRTC does not know this name: log-in refused.";
      if (field === "type") return "Not logged in yet: log in first.";
      return `Refused by LinkRTC: ${error.message}`;
    case 404: return "That call no longer exists (it ended, or another tab or device took it).";
    case 409: return `The call cannot do that now: ${error.message}`;
    case 488: return `Media failure: ${error.message}`;
    case 500: return "LinkRTC had an internal fault; the action was not done.";
    default: return error.message || String(error);
  }
}

// -- log-in ------------------------------------------------------------------------------

function login(event) {
  event && event.preventDefault();
  const name = $("#name").value.trim();
  if (!name) return;
  if (app.device) app.device.destroy();
  const device = new LinkRTC.Device(webSocketURL(), {
    client: name,
    token: $("#token").value || undefined,
    trace: true,
    video: $("#video").checked,
    videoElement: "#remoteVideo",
  });
  app.device = device;
  rememberLogin({ name, token: $("#token").value || "" });
  setStatus("connecting", `Connecting as ${name}…`);
  showBanner("");

  device.on("registered", (client) => {
    setStatus("registered", `Registered as ${client}`);
    if (app.wasLost) showBanner("Reconnected to LinkRTC.", "info");
    app.wasLost = false;
    $("#logout").disabled = false;
    updateButtons();
  });
  device.on("unregistered", ({ reason, willReconnect }) => {
    if (willReconnect) {
      app.wasLost = true;
      setStatus("reconnecting", "Connection lost: reconnecting…");
      const ended = [...app.calls.values()].some((r) => r.ended && Date.now() - r.ended < 1000);
      showBanner(`${capital(reason)}.${ended ? " The calls on this tab ended." : ""} Reconnecting…`);
    } else {
      setStatus("unregistered", "Not logged in");
    }
    updateButtons();
  });
  device.on("reconnecting", ({ attempt, delay }) => {
    setStatus("reconnecting", `Connection lost: retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt})`);
  });
  device.on("error", (error) => {
    if (error.code === 0 && /not connected/.test(error.message)) {
      showBanner("Not connected to LinkRTC right now; try again once reconnected.");
    } else {
      showBanner(errorWords(error));
    }
    if ((error.field === "client" || error.field === "token") && device.state !== "registered") {
      setStatus("refused", "Log-in refused");
    }
  });
  device.on("incoming", (call) => adopt(call));
  device.on("resumed", (call) => {
    // A call kept by LinkRTC across a reload (or a lost connection): shown again.
    const record = app.calls.get(call.id) || adopt(call);
    app.current = record;
    localLadder(record, "resuming the call after the connection was lost");
    showBanner("Resuming your call…", "info");
    updatePanel();
  });
  device.on("trace", (line) => addTrace(line));
  device.register().catch(() => {});
}

// The log-in is kept for this tab (sessionStorage), so a reload logs in
// again by itself and LinkRTC's resume token picks the live call up.
const LOGIN_KEY = "linkrtc.demo.login";

function rememberLogin(login) {
  try {
    if (login) sessionStorage.setItem(LOGIN_KEY, JSON.stringify(login));
    else sessionStorage.removeItem(LOGIN_KEY);
  } catch (e) {
    // storage disabled: no log-in after a reload
  }
}

function rememberedLogin() {
  try {
    return JSON.parse(sessionStorage.getItem(LOGIN_KEY) || "null");
  } catch (e) {
    return null;
  }
}

function logout() {
  rememberLogin(null);
  if (app.device) app.device.destroy();
  app.device = null;
  setStatus("unregistered", "Not logged in");
  $("#logout").disabled = true;
  updateButtons();
}

function capital(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

// -- calls -------------------------------------------------------------------------------

function adopt(call) {
  const record = {
    call, states: [], traces: [], started: Date.now(), confirmedAt: null, digits: "",
    entry: logEntry(call),
  };
  app.calls.set(call.id || `ref:${call.ref}`, record);
  if (call.id) {
    for (const line of app.traces.get(call.id) || []) record.traces.push(line);
    app.traces.delete(call.id);
  }
  call.on("calling", () => {
    app.calls.delete(`ref:${call.ref}`);
    app.calls.set(call.id, record);
    record.entry.dataset.call = call.id;
    for (const line of app.traces.get(call.id) || []) record.traces.push(line);
    app.traces.delete(call.id);
    if (app.ladderRecord === record) renderLadder();
  });
  call.on("state", (state, cause) => {
    record.states.push(state);
    if (state === "confirmed") record.confirmedAt = Date.now();
    updateEntry(record, cause);
    if (record === app.current) updatePanel();
  });
  call.on("accept", () => {
    localLadder(record, "call confirmed: audio should flow both ways now");
    if (record === app.current) updatePanel();
  });
  call.on("dtmf", (digits) => {
    record.digits += `←${digits} `;
    if (record === app.current) $("#digits").textContent = record.digits;
    localLadder(record, `DTMF received: ${digits}`);
  });
  call.on("hold", (onHold) => {
    $("#hold").textContent = onHold ? "Resume" : "Hold";
    updateEntry(record);
  });
  call.on("iceconnectionstatechange", (state) => {
    localLadder(record, `ICE ${state}`);
    if (record === app.current) updatePanel();
  });
  call.on("warning", (text) => {
    showBanner(capital(text), "warn");
    localLadder(record, text);
  });
  call.on("error", (error) => showBanner(errorWords(error)));
  call.on("video", () => {
    $("#remoteVideo").hidden = false;
    localLadder(record, "video from the far end");
  });
  call.on("disconnect", ({ cause, reason, local }) => {
    record.ended = Date.now();
    if (![...app.calls.values()].some((r) => r !== record && r.call.active && r.call.remoteVideoStream)) {
      $("#remoteVideo").hidden = true;
    }
    record.cause = cause;
    record.reason = reason;
    updateEntry(record, cause);
    if (!local && Number(cause) >= 400) {
      showBanner(`Call ${call.direction === "incoming" ? "from " + call.from : "to " + call.to} ended: ${reason || cause}.`, "warn");
    }
    if (record === app.current) {
      // Keep the ladder of the finished call on screen; pick the next live call, if any.
      const next = [...app.calls.values()].find((r) => r.call.active);
      app.current = next || null;
      updatePanel();
      if (!next) {
        $("#callInfo").textContent = `Last call: ${callTitle(call)} — ${reason || cause || "ended"}`;
      }
    }
  });
  if (!app.current || !app.current.call.active) app.current = record;
  if (!app.ladderRecord || !app.ladderRecord.call.active || app.current === record) {
    app.ladderRecord = record;
    renderLadder();
  }
  updatePanel();
  return record;
}

function callTitle(call) {
  return call.direction === "incoming" ? `from ${call.from || "?"}` : `to ${call.to}`;
}

async function answer() {
  const record = app.current;
  if (!record) return;
  try {
    await record.call.accept();
  } catch (error) {
    showBanner(`Could not answer: ${error.message}`);
  }
  updatePanel();
}

function reject() {
  app.current && app.current.call.reject("decline");
  updatePanel();
}

function hangup() {
  app.current && app.current.call.hangup();
  updatePanel();
}

function toggleHold() {
  const call = app.current && app.current.call;
  if (!call) return;
  if (call.onHold) call.unhold();
  else call.hold();
}

function toggleMute() {
  const call = app.current && app.current.call;
  if (!call) return;
  call.mute(!call.isMuted());
  $("#mute").textContent = call.isMuted() ? "Unmute" : "Mute";
  $("#mute").classList.toggle("on", call.isMuted());
}

function sendDigit(digit) {
  const record = app.current;
  if (!record) return;
  try {
    record.call.sendDigits(digit);
    record.digits += `→${digit} `;
    $("#digits").textContent = record.digits;
  } catch (error) {
    showBanner(errorWords(error));
  }
}

async function placeCall(event) {
  event.preventDefault();
  const to = $("#to").value.trim();
  if (!to || !app.device) return;
  try {
    const promise = app.device.connect({ to });
    $("#call").disabled = true;
    const call = await promise;
    // adopt() hooks 'calling' to file the record under the id once it comes.
    if (![...app.calls.values()].some((r) => r.call === call)) adopt(call);
  } catch (error) {
    showBanner(`Could not place the call: ${error.message}`);
  }
  updateButtons();
}

// -- the call panel ------------------------------------------------------------------------

function updateButtons() {
  const record = app.current;
  const call = record && record.call;
  const registered = !!app.device && app.device.state === "registered";
  const ringingIn = !!call && call.direction === "incoming" && ["pending", "ringing"].includes(call.state);
  const live = !!call && call.active;
  const open = live && call.state === "open";
  $("#answer").disabled = !ringingIn;
  $("#reject").disabled = !ringingIn;
  $("#hangup").disabled = !live;
  $("#hold").disabled = !open;
  $("#mute").disabled = !(live && call.state !== "pending");
  for (const button of document.querySelectorAll("#dialpad button")) button.disabled = !open;
  $("#call").disabled = !registered || live;
  $("#callPanel").dataset.state = call ? call.state : "idle";
}

function updatePanel() {
  const record = app.current;
  if (record) {
    const call = record.call;
    const state = call.serverState || call.state;
    $("#callInfo").innerHTML = "";
    const title = document.createElement("strong");
    title.textContent = callTitle(call);
    const detail = document.createElement("span");
    detail.textContent = ` — ${stateWords(call, state)}`;
    $("#callInfo").append(title, detail);
    $("#digits").textContent = record.digits;
    $("#hold").textContent = call.onHold ? "Resume" : "Hold";
    $("#mute").textContent = call.isMuted() ? "Unmute" : "Mute";
  }
  updateButtons();
  ensureStatsTimer();
}

function stateWords(call, state) {
  if (!call.active) return `ended (${describeCause(call.cause) || "ended"})`;
  if (call.onHold) return "on hold";
  switch (state) {
    case "pending": return call.direction === "incoming" ? "incoming call" : "placing the call…";
    case "calling": return call.direction === "incoming" ? "incoming call" : "calling…";
    case "ringing": return call.direction === "incoming" ? "ringing here" : "ringing at the far end";
    case "connecting": return "connecting the audio…";
    case "resuming": return "connection lost: resuming the call…";
    case "confirmed": case "open": return "in call";
    default: return state;
  }
}

// -- the call log ------------------------------------------------------------------------------

function logEntry(call) {
  const li = document.createElement("li");
  li.dataset.call = call.id || "";
  li.dataset.direction = call.direction;
  li.innerHTML = '<span class="time"></span> <span class="dir"></span> <span class="peer"></span> '
    + '<span class="states"></span> <span class="cause"></span>';
  li.querySelector(".time").textContent = clockText(Date.now() / 1000).slice(0, 8);
  li.querySelector(".dir").textContent = call.direction === "incoming" ? "⬋ in" : "⬈ out";
  li.querySelector(".peer").textContent = call.direction === "incoming" ? call.from || "?" : call.to;
  li.addEventListener("click", () => {
    const record = [...app.calls.values()].find((r) => r.entry === li);
    if (!record) return;
    app.ladderRecord = record;
    if (record.call.active) app.current = record;
    renderLadder();
    updatePanel();
  });
  $("#calllog").prepend(li);
  return li;
}

function updateEntry(record, cause) {
  const li = record.entry;
  const call = record.call;
  li.dataset.state = call.state === "closed" ? "dropped" : call.serverState || call.state;
  li.querySelector(".states").textContent = record.states.join(" → ");
  if (call.state === "closed") {
    const seconds = record.confirmedAt ? Math.round((record.ended - record.confirmedAt) / 1000) : null;
    const words = describeCause(record.cause);
    li.dataset.cause = record.cause ?? "";
    li.querySelector(".cause").textContent = `${words || "ended"}${record.cause && typeof record.cause === "number" ? ` (${record.cause})` : ""}`
      + (seconds !== null ? `, ${seconds} s` : "");
    li.classList.toggle("failed", Number(record.cause) >= 400 || (typeof record.cause === "string" && !record.confirmedAt));
  } else if (cause !== undefined && cause !== null) {
    li.querySelector(".cause").textContent = typeof cause === "number" ? `(${cause})` : cause;
  }
}

// -- the ladder ------------------------------------------------------------------------------------

function addTrace(line) {
  const record = app.calls.get(line.call);
  if (!record) {
    // Traces may come before `incoming` (the INVITE): keep them for the call.
    if (!app.traces.has(line.call)) app.traces.set(line.call, []);
    app.traces.get(line.call).push(line);
    return;
  }
  record.traces.push(line);
  if (record === app.ladderRecord) appendLadderRow(record, line);
}

function localLadder(record, text) {
  const line = { call: record.call.id, time: Date.now() / 1000, dir: "local", proto: "local", text };
  record.traces.push(line);
  if (record === app.ladderRecord) appendLadderRow(record, line);
}

function renderLadder() {
  const ladder = $("#ladder");
  ladder.innerHTML = "";
  const record = app.ladderRecord;
  if (!record) return;
  ladder.dataset.call = record.call.id || "";
  $("#ladderCall").textContent = `${callTitle(record.call)} · call ${record.call.id || "(placing)"}`;
  for (const line of record.traces) appendLadderRow(record, line);
}

function sdpSummary(sdp) {
  if (!sdp || !/^v=0/m.test(sdp)) return null;
  const lines = sdp.split(/\r?\n/);
  let address = "";
  let port = "";
  let direction = "sendrecv";
  const codecs = [];
  let candidates = 0;
  for (const l of lines) {
    if (l.startsWith("c=")) address = l.split(" ").pop();
    else if (l.startsWith("m=audio")) port = l.split(" ")[1];
    else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(l)) direction = l.slice(2);
    else if (l.startsWith("a=rtpmap:")) codecs.push(l.split(" ")[1].split("/")[0]);
    else if (l.startsWith("a=candidate:")) candidates += 1;
  }
  const warnings = [];
  if (port === "0") warnings.push("audio refused (port 0)");
  if (address === "0.0.0.0") warnings.push("address 0.0.0.0 (hold)");
  if (direction !== "sendrecv") warnings.push(direction);
  if (/UDP\/TLS|SAVPF/.test(sdp) && candidates === 0) warnings.push("no ICE candidates");
  const text = `SDP ${address}:${port} ${codecs.slice(0, 3).join(",")} ${direction}`
    + (candidates ? ` ${candidates} cand.` : "");
  return { text, warnings };
}

function labelFor(line) {
  if (line.proto === "sip") {
    const first = line.text.split(/\r?\n/, 1)[0];
    const label = first.startsWith("SIP/2.0 ") ? first.slice(8) : first.split(" ")[0];
    const cseq = /^CSeq:\s*\d+\s+(\S+)/im.exec(line.text);
    const body = line.text.split(/\r?\n\r?\n/).slice(1).join("\n\n");
    return { label: first.startsWith("SIP/2.0 ") && cseq ? `${label} (${cseq[1]})` : label, sdp: sdpSummary(body) };
  }
  if (line.proto === "ws") {
    try {
      const m = JSON.parse(line.text);
      let label = m.type;
      if (m.state) label += ` ${m.state}`;
      if (m.cause !== undefined && m.cause !== null) label += ` ${m.cause}`;
      if (m.digits) label += ` ${m.digits}`;
      if (m.code) label += ` ${m.code} ${m.message || ""}`;
      if (m.reason) label += ` ${m.reason}`;
      return { label, sdp: sdpSummary(m.sdp) };
    } catch (e) {
      return { label: line.text.slice(0, 60), sdp: null };
    }
  }
  return { label: line.text, sdp: null };
}

function appendLadderRow(record, line) {
  const ladder = $("#ladder");
  const first = record.traces.length ? record.traces[0].time : line.time;
  const row = document.createElement("div");
  row.className = `row ${line.proto} ${line.dir}`;
  const time = document.createElement("span");
  time.className = "t";
  time.textContent = clockText(line.time);
  time.title = `+${Math.round((line.time - first) * 1000)} ms from the first line`;
  const { label, sdp } = labelFor(line);
  const arrow = document.createElement("span");
  // Lanes: SIP peer | LinkRTC | this browser. sip in: peer→LinkRTC; ws in: browser→LinkRTC.
  let lane;
  let pointing;
  if (line.proto === "sip") {
    lane = "left";
    pointing = line.dir === "in" ? "right" : "left";
  } else if (line.proto === "ws") {
    lane = "right";
    pointing = line.dir === "in" ? "left" : "right";
  } else {
    lane = "note";
    pointing = "none";
  }
  arrow.className = `arrow lane-${lane} to-${pointing}`;
  const text = document.createElement("span");
  text.className = "label";
  text.textContent = label;
  arrow.append(text);
  if (sdp) {
    const s = document.createElement("span");
    s.className = sdp.warnings.length ? "sdp warn" : "sdp";
    s.textContent = sdp.text + (sdp.warnings.length ? ` ⚠ ${sdp.warnings.join(", ")}` : "");
    arrow.append(s);
  }
  row.append(time, arrow);
  if (line.proto !== "local") {
    const pre = document.createElement("pre");
    pre.hidden = true;
    pre.textContent = line.proto === "ws" ? prettyJSON(line.text) : line.text;
    row.append(pre);
    row.addEventListener("click", () => { pre.hidden = !pre.hidden; });
  }
  // Keep the rows in time order (a trace line may come after a local note).
  row.dataset.time = String(line.time);
  const later = [...ladder.children].find((r) => Number(r.dataset.time) > line.time);
  ladder.insertBefore(row, later || null);
  if (!later) ladder.scrollTop = ladder.scrollHeight;
}

function clockText(seconds) {
  const d = new Date(seconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function prettyJSON(text) {
  try {
    const m = JSON.parse(text);
    const sdp = m.sdp;
    if (sdp) m.sdp = "(below)";
    return JSON.stringify(m, null, 1) + (sdp ? `\n${sdp}` : "");
  } catch (e) {
    return text;
  }
}

// -- audio health (the one-way-audio helper) ------------------------------------------------------

function ensureStatsTimer() {
  if (app.statsTimer) return;
  app.statsTimer = setInterval(pollStats, 1000);
}

async function collectStats(call) {
  const report = await call.getStats();
  if (!report) return null;
  const out = { inbound: null, outbound: null, pair: null, ice: call.peerConnection.iceConnectionState };
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      out.inbound = {
        packetsReceived: s.packetsReceived || 0, packetsLost: s.packetsLost || 0,
        bytesReceived: s.bytesReceived || 0, totalAudioEnergy: s.totalAudioEnergy || 0,
        audioLevel: s.audioLevel || 0, jitter: s.jitter || 0,
      };
    } else if (s.type === "outbound-rtp" && s.kind === "audio") {
      out.outbound = { packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0 };
    } else if (s.type === "transport" && s.selectedCandidatePairId) {
      const pair = byId.get(s.selectedCandidatePairId);
      if (pair) {
        const local = byId.get(pair.localCandidateId) || {};
        const remote = byId.get(pair.remoteCandidateId) || {};
        out.pair = `${local.address || local.ip}:${local.port} ⇄ ${remote.address || remote.ip}:${remote.port} (${local.protocol || "udp"})`;
      }
    } else if (s.type === "media-source" && s.kind === "audio") {
      out.micLevel = s.audioLevel || 0;
    }
  });
  return out;
}

async function pollStats() {
  const record = app.current;
  if (!record || !record.call.active || !record.call.peerConnection) return;
  let stats;
  try {
    stats = await collectStats(record.call);
  } catch (e) {
    return;
  }
  if (!stats) return;
  const previous = record.stats;
  record.stats = stats;
  app.lastStats = stats;
  $("#hIce").textContent = `ICE ${stats.ice}${stats.pair ? ", " + stats.pair : ""}`;
  const sent = stats.outbound ? stats.outbound.packetsSent : 0;
  const got = stats.inbound ? stats.inbound.packetsReceived : 0;
  const sentRate = previous && previous.outbound ? sent - previous.outbound.packetsSent : null;
  const gotRate = previous && previous.inbound ? got - previous.inbound.packetsReceived : null;
  $("#hOut").textContent = `${sent} packets${sentRate !== null ? ` (${sentRate}/s)` : ""}${record.call.isMuted() ? ", muted" : ""}`;
  $("#hIn").textContent = `${got} packets${gotRate !== null ? ` (${gotRate}/s)` : ""}`
    + (stats.inbound ? `, level ${stats.inbound.audioLevel.toFixed(2)}` : "");
  // Diagnosis once the call has been up for a few seconds.
  const up = record.confirmedAt ? (Date.now() - record.confirmedAt) / 1000 : 0;
  const problems = [];
  if (up > 3) {
    if (stats.ice !== "connected" && stats.ice !== "completed") problems.push(`the media connection is "${stats.ice}": no audio path between this browser and LinkRTC`);
    if (gotRate === 0 && !record.call.onHold) problems.push("no audio is arriving from the far end: check the SIP side's SDP in the ladder (address, port, sendonly/inactive) and its firewall");
    if (sentRate === 0 && !record.call.onHold) problems.push("this browser is not sending audio");
    if (got > 0 && gotRate > 0 && stats.inbound.totalAudioEnergy === 0) problems.push("packets arrive but they are silent");
  }
  const diagnosis = $("#diagnosis");
  diagnosis.textContent = problems.length ? `⚠ ${capital(problems.join("; "))}.` : up > 3 ? "✓ Audio flows both ways." : "";
  diagnosis.className = problems.length ? "warn" : "ok";
  if (!record.firstAudio && got > 0) {
    record.firstAudio = true;
    localLadder(record, "first audio packets received from LinkRTC");
  }
}

/** For tests: the current call's stats, collected now. */
app.stats = async () => {
  const record = app.current || [...app.calls.values()].pop();
  if (!record || !record.call.peerConnection) return null;
  return collectStats(record.call);
};

// -- wiring ------------------------------------------------------------------------------------

$("#loginForm").addEventListener("submit", login);
$("#logout").addEventListener("click", logout);
$("#dialForm").addEventListener("submit", placeCall);
$("#answer").addEventListener("click", answer);
$("#reject").addEventListener("click", reject);
$("#hangup").addEventListener("click", hangup);
$("#hold").addEventListener("click", toggleHold);
$("#mute").addEventListener("click", toggleMute);
for (const button of document.querySelectorAll("#dialpad button")) {
  button.addEventListener("click", () => sendDigit(button.dataset.digit));
}
document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement) return;
  if (/^[0-9*#]$/.test(event.key)) {
    const button = document.querySelector(`#dialpad button[data-digit="${event.key}"]`);
    if (button && !button.disabled) button.click();
  }
});
if (params.get("name")) {
  $("#name").value = params.get("name");
  if (params.has("login")) login();
} else if (rememberedLogin()) {
  const saved = rememberedLogin();
  $("#name").value = saved.name;
  $("#token").value = saved.token || "";
  login();
}
updateButtons();
