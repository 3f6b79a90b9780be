// The quag serve page: pick or upload a video, follow its encoding, ask questions, show each answer on a timeline.
// Talks only to this server's /api (docs/serve.md); no library, nothing loaded from elsewhere.
"use strict";

// Same colours as the HTML reports (quag.report.COLORS): step i is drawn and listed in COLORS[i].
const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
const CUE_COLORS = ["#b8c7d9", "#d3dde8"];
const CHAR_PX = 6.6; // average width of a 12 px character, to decide whether a label fits its span
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const state = { video: null, answers: [], current: -1, poll: null, asking: false };

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds + 1e-6)); // whole seconds rounded down, as the player shows them
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const ss = String(r).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function timeTicks(duration, most = 10) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  const step = steps.find((s) => duration / s <= most) || 3600 * Math.ceil(duration / 3600 / most);
  const ticks = [];
  for (let t = 0; t <= duration + 1e-9; t += step) ticks.push(t);
  return ticks;
}

function detailOf(body) {
  if (!body) return "";
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  return "";
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) throw new Error(detailOf(body) || `${response.status} ${response.statusText}`);
  return body;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

// -- choosing a video ----------------------------------------------------------------------------------------
async function loadExamples() {
  let examples = [];
  try {
    examples = await api("/api/examples");
  } catch (e) {
    showError(`Could not list the example videos: ${e.message}`);
  }
  const box = $("examples");
  box.replaceChildren();
  for (const example of examples) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = example.name;
    button.dataset.name = example.name;
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => chooseExample(example.name, example.query));
    box.append(button);
  }
}

async function chooseExample(name, query) {
  showError("");
  if (query && !$("query").value) $("query").placeholder = `e.g. ${query}`;
  for (const b of $("examples").children) b.setAttribute("aria-pressed", String(b.dataset.name === name));
  setProgress(0.02, `Preparing ${name}…`);
  try {
    setVideo(await api(`/api/examples/${encodeURIComponent(name)}`, { method: "POST" }));
  } catch (e) {
    hideProgress();
    showError(e.message);
  }
}

function upload(file) {
  showError("");
  for (const b of $("examples").children) b.setAttribute("aria-pressed", "false");
  const form = new FormData();
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest(); // fetch() reports no upload progress
  xhr.open("POST", "/api/videos");
  xhr.responseType = "json";
  xhr.upload.onprogress = (event) => {
    if (event.lengthComputable) {
      const share = event.loaded / event.total;
      setProgress(0.3 * share, `Uploading ${file.name}: ${Math.round(100 * share)}%`);
    }
  };
  xhr.onload = () => {
    if (xhr.status >= 200 && xhr.status < 300) {
      setVideo(xhr.response);
    } else {
      hideProgress();
      showError(detailOf(xhr.response) || `upload failed (${xhr.status})`);
    }
  };
  xhr.onerror = () => {
    hideProgress();
    showError("The upload did not reach the server (connection lost?)");
  };
  setProgress(0, `Uploading ${file.name}…`);
  xhr.send(form);
}

function setVideo(video) {
  const changed = !state.video || state.video.id !== video.id;
  state.video = video;
  if (changed) {
    state.answers = [];
    state.current = -1;
    renderHistory();
    $("answer").hidden = true;
    const player = $("player");
    player.src = video.media_url;
    player.hidden = false;
  }
  $("video-name").textContent = `${video.name} · ${clock(video.duration)}`;
  followEncoding();
}

function followEncoding() {
  clearTimeout(state.poll);
  const video = state.video;
  const p = video.progress;
  if (p.status === "ready") {
    setProgress(1, `Ready: ${plural(video.transcript.length, "transcript line")}. Ask a question.`);
    setTimeout(hideProgress, 1500);
  } else if (p.status === "failed") {
    hideProgress();
    showError(video.error || "This video could not be encoded.");
  } else if (p.status === "queued") {
    setProgress(0.3, p.ahead ? `Waiting for the model: ${plural(p.ahead, "job")} ahead` : "Starting…");
  } else {
    const estimate = p.estimate ? ` of about ${Math.ceil(p.estimate)} s` : "";
    setProgress(0.3 + 0.7 * p.fraction, `Transcribing and encoding: ${Math.floor(p.elapsed)} s${estimate}`);
  }
  updateAskState();
  if (p.status === "queued" || p.status === "encoding") {
    state.poll = setTimeout(async () => {
      try {
        const fresh = await api(`/api/videos/${video.id}`);
        if (state.video && state.video.id === fresh.id) {
          state.video = fresh;
          followEncoding();
        }
      } catch (e) {
        showError(e.message);
      }
    }, 400);
  }
}

function setProgress(fraction, text) {
  $("progress").hidden = false;
  $("bar").style.width = `${Math.round(100 * Math.min(1, fraction))}%`;
  $("bar").parentElement.setAttribute("aria-valuenow", String(Math.round(100 * fraction)));
  $("progress-text").textContent = text;
}

function hideProgress() {
  $("progress").hidden = true;
}

// -- asking ----------------------------------------------------------------------------------------------------
function updateAskState() {
  const ready = state.video && state.video.progress.status === "ready";
  $("ask").disabled = !ready || state.asking;
  $("ask").textContent = state.asking ? "Asking…" : "Ask";
  $("ask-hint").textContent = !state.video
    ? "Pick or upload a video first."
    : ready
      ? `Ask about ${state.video.name}; ask as many questions as you like.`
      : "The question box opens once the video is encoded.";
}

async function ask(event) {
  event.preventDefault();
  const query = $("query").value.trim();
  if (!query || !state.video) return;
  showError("");
  state.asking = true;
  updateAskState();
  try {
    const answer = await api(`/api/videos/${state.video.id}/ask`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query }),
    });
    state.answers.push(answer);
    state.current = state.answers.length - 1;
    renderHistory();
    renderAnswer(answer);
  } catch (e) {
    showError(e.message);
  } finally {
    state.asking = false;
    updateAskState();
  }
}

function renderHistory() {
  const list = $("history");
  list.replaceChildren();
  $("history-title").hidden = state.answers.length === 0;
  state.answers.forEach((answer, i) => {
    const item = document.createElement("li");
    item.className = i === state.current ? "current" : "";
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = answer.query;
    button.addEventListener("click", () => {
      state.current = i;
      renderHistory();
      renderAnswer(answer);
    });
    const note = document.createElement("span");
    note.className = "q";
    note.textContent = `${clock(answer.moment[0])}–${clock(answer.moment[1])}, ${plural(answer.steps.length, "step")}`;
    item.append(button, note);
    list.append(item);
  });
}

// -- the answer ------------------------------------------------------------------------------------------------
function svg(name, attributes = {}, text = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function renderAnswer(answer) {
  $("answer").hidden = false;
  $("answer-title").textContent = answer.query;
  const [s, e] = answer.moment;
  $("answer-summary").textContent =
    `The answer is at ${clock(s)}–${clock(e)} of ${clock(answer.duration)}, in ${plural(answer.steps.length, "step")}` +
    ` (model time ${answer.seconds.toFixed(2)} s). Click a step to play it.`;
  $("timeline").replaceChildren(drawTimeline(answer, state.video ? state.video.transcript : []));
  const list = $("steps");
  list.replaceChildren();
  answer.steps.forEach((step, i) => {
    const item = document.createElement("li");
    item.className = "step";
    item.tabIndex = 0;
    item.dataset.start = String(step.start);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = COLORS[i % COLORS.length];
    const number = document.createElement("span");
    number.className = "n";
    number.textContent = `${i + 1}.`;
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = `${clock(step.start)}–${clock(step.end)}`;
    const caption = document.createElement("span");
    caption.textContent = step.caption;
    item.append(swatch, number, time, caption);
    item.addEventListener("click", () => playFrom(step.start));
    item.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        playFrom(step.start);
      }
    });
    list.append(item);
  });
  markPlaying();
}

function drawTimeline(answer, transcript) {
  const width = 1000, left = 110, lane = 30;
  const rows = [
    ["moment", [[answer.moment[0], answer.moment[1], ""]], "moment"],
    ["steps", answer.steps.map((st) => [st.start, st.end, st.caption]), "step"],
    ["transcript", transcript.map((c) => [c.start, c.end, c.text]), "cue"],
  ];
  const duration = Math.max(answer.duration, 1e-9);
  const scale = (width - left - 16) / duration;
  const axisY = 10 + rows.length * lane;
  const root = svg("svg", {
    class: "chart", viewBox: `0 0 ${width} ${axisY + 24}`, role: "img", "aria-label": "answer timeline",
  });
  for (const t of timeTicks(duration)) {
    const x = left + t * scale;
    root.append(svg("line", { class: "grid", x1: x, y1: 6, x2: x, y2: axisY }));
    root.append(svg("text", { class: "tick", x, y: axisY + 16, "text-anchor": "middle" }, clock(t)));
  }
  rows.forEach(([label, spans, kind], r) => {
    const y = 10 + r * lane;
    root.append(svg("text", { x: 4, y: y + 15 }, label));
    root.append(svg("rect", { x: left, y, width: duration * scale, height: 20, fill: "#eef1f4" }));
    spans.forEach(([start, end, text], i) => {
      const s = Math.min(Math.max(start, 0), duration), e = Math.min(Math.max(end, s), duration); // within the axis
      const x = left + s * scale, w = Math.max((e - s) * scale, 3);
      const numbered = kind === "step";
      const color = kind === "cue" ? CUE_COLORS[i % 2] : COLORS[i % COLORS.length];
      const ink = kind === "cue" ? "#1f2328" : "#fff";
      const group = svg("g", { class: kind });
      const rect = svg("rect", { x, y, width: w, height: 20, fill: color });
      rect.append(svg("title", {}, `${numbered ? `${i + 1}. ` : ""}${clock(s)}–${clock(e)} ${text}`.trim()));
      group.append(rect);
      let shown = numbered && text ? `${i + 1}. ${text}` : text;
      if (shown && shown.length * CHAR_PX + 6 > w) shown = numbered ? String(i + 1) : "";
      if (shown && shown.length * CHAR_PX + 6 <= w) {
        group.append(svg("text", { x: x + 3, y: y + 14, style: `fill:${ink}`, "pointer-events": "none" }, shown));
      }
      if (numbered) {
        group.dataset.start = String(s);
        group.addEventListener("click", () => playFrom(s));
      }
      root.append(group);
    });
  });
  const head = svg("line", { class: "playhead", x1: left, y1: 4, x2: left, y2: axisY, id: "playhead" });
  root.append(head);
  root.dataset.left = String(left);
  root.dataset.scale = String(scale);
  return root;
}

function playFrom(seconds) {
  const player = $("player");
  player.currentTime = seconds;
  const playing = player.play();
  if (playing) playing.catch(() => {}); // a browser may refuse to start sound without a gesture: the seek stays
  markPlaying();
}

function markPlaying() {
  const player = $("player");
  const t = player.currentTime || 0;
  const root = $("timeline").firstElementChild;
  if (root) {
    const x = Number(root.dataset.left) + t * Number(root.dataset.scale);
    const head = root.querySelector(".playhead");
    head.setAttribute("x1", x);
    head.setAttribute("x2", x);
  }
  const answer = state.answers[state.current];
  document.querySelectorAll("#steps li").forEach((item, i) => {
    const step = answer && answer.steps[i];
    item.classList.toggle("playing", Boolean(step) && t >= step.start && t < step.end);
  });
}

// -- start -----------------------------------------------------------------------------------------------------
async function start() {
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) upload(file);
    event.target.value = "";
  });
  $("ask-form").addEventListener("submit", ask);
  $("player").addEventListener("timeupdate", markPlaying);
  $("player").addEventListener("seeked", markPlaying);
  try {
    const health = await api("/api/health");
    const kind = health.speech_only ? "speech-only" : "frames + speech";
    $("model").textContent = `${health.model} (${kind}) · ${health.checkpoint || "checkpoint"} · ${health.device}`;
  } catch (e) {
    $("model").textContent = "";
    showError(`The server does not answer: ${e.message}`);
  }
  await loadExamples();
  updateAskState();
}

start();
