// The page: settings <-> URL query, streamed generation with tinted characters, scoring.
// Plain JavaScript, no build step and nothing fetched from elsewhere: it works offline.
"use strict";

const $ = (id) => document.getElementById(id);
const FIELDS = ["prime", "length", "strategy", "temperature", "top_k", "top_p", "seed", "stop",
                "no_repeat_ngram", "beam_width"];
const TEXT_FIELDS = new Set(["prime", "strategy", "stop"]);
let running = null;          // the AbortController of the generation in progress

// p -> a background colour on a log scale, since a character model's probabilities span orders
// of magnitude: red at 1% or less, yellow at 10%, green at 100%.
function tint(p) {
  const q = Math.max(0, Math.min(1, 1 + Math.log10(Math.max(p, 1e-9)) / 2));
  return `hsl(${Math.round(120 * q)}, ${Math.round(85 - 25 * q)}%, ${Math.round(78 + 7 * q)}%)`;
}

function charSpan(ch, p, nats) {
  const span = document.createElement("span");
  span.className = "ch";
  span.textContent = ch;
  setProbability(span, p, nats);
  return span;
}

function setProbability(span, p, nats) {
  if (p === null || p === undefined || Number.isNaN(p)) {
    span.removeAttribute("data-p");
    span.title = "not scored (no context before it)";
    span.style.backgroundColor = "";
    return;
  }
  span.dataset.p = p.toFixed(6);
  const n = nats === undefined ? -Math.log(p) : nats;
  span.title = `p = ${p.toFixed(4)} (${n.toFixed(3)} nats)`;
  span.style.backgroundColor = tint(p);
}

// Settings live in the URL: a link opens the page with them and reproduces the generation.
function readSettings() {
  const body = {};
  for (const name of FIELDS) {
    const value = $(name).value;
    if (TEXT_FIELDS.has(name)) body[name] = value;
    else if (value !== "") body[name] = Number(value);
  }
  if (body.strategy !== "beam") { delete body.beam_width; }
  return body;
}

function settingsToUrl(body) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(body)) q.set(k, String(v));
  history.replaceState(null, "", "?" + q.toString());
}

function urlToSettings() {
  const q = new URLSearchParams(location.search);
  for (const name of FIELDS) if (q.has(name)) $(name).value = q.get(name);
  if (!q.has("seed")) $("seed").value = randomSeed();
  return q.has("prime");
}

const randomSeed = () => Math.floor(Math.random() * 2 ** 31);

// Server-sent events arrive as "event: NAME\ndata: JSON\n\n" frames, possibly split anywhere.
async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message", data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) yield { event, data: JSON.parse(data) };
    }
  }
}

async function errorOf(response) {
  try { return (await response.json()).error; } catch (e) { return `HTTP ${response.status}`; }
}

async function generate() {
  if (running) return;
  const body = readSettings();
  settingsToUrl(body);
  const out = $("output");
  out.textContent = "";
  $("error").textContent = "";
  $("status").textContent = "generating…";
  running = new AbortController();
  $("generate").disabled = true;
  $("stop-button").disabled = false;
  let count = 0;
  try {
    const response = await fetch("/api/generate/stream", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), signal: running.signal });
    if (!response.ok) throw new Error(await errorOf(response));
    for await (const { event, data } of sseEvents(response)) {
      if (event === "start") {
        const prime = document.createElement("span");
        prime.className = "prime";
        prime.textContent = data.prime;
        out.appendChild(prime);
      } else if (event === "text") {
        const frag = document.createDocumentFragment();
        for (const [index, text, probs] of data.pieces) {
          if (index !== 0) continue;           // the page shows the first text
          [...text].forEach((ch, k) => frag.appendChild(charSpan(ch, probs ? probs[k] : null)));
          count += [...text].length;
        }
        out.appendChild(frag);
        $("status").textContent = `generating… ${count} characters`;
      } else if (event === "done") {
        const first = data.texts[0];
        const spans = out.querySelectorAll(".ch");   // exact numbers, and beam's tints
        first.char_nats.forEach((n, k) => { if (spans[k]) setProbability(spans[k], Math.exp(-n), n); });
        out.dataset.done = "1";
        $("status").textContent = `${count} characters, ${first.nats_per_char.toFixed(3)} nats/char`;
      } else if (event === "error") {
        throw new Error(data.error);
      }
    }
  } catch (e) {
    if (e.name === "AbortError") $("status").textContent = `stopped after ${count} characters`;
    else { $("error").textContent = e.message; $("status").textContent = ""; }
  } finally {
    running = null;
    $("generate").disabled = false;
    $("stop-button").disabled = true;
  }
}

async function score() {
  const out = $("score-output");
  $("score-error").textContent = "";
  out.textContent = "";
  $("score-status").textContent = "scoring…";
  try {
    const response = await fetch("/api/score", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: $("score-text").value }) });
    if (!response.ok) throw new Error(await errorOf(response));
    const data = await response.json();
    const frag = document.createDocumentFragment();
    data.chars.forEach((ch, k) => {
      const n = data.char_nats[k];
      frag.appendChild(charSpan(ch, n === null ? null : Math.exp(-n), n === null ? undefined : n));
    });
    out.appendChild(frag);
    out.dataset.done = "1";
    $("score-status").textContent =
      `${data.scored} characters scored, ${data.nats_per_char.toFixed(3)} nats/char`;
  } catch (e) {
    $("score-error").textContent = e.message;
    $("score-status").textContent = "";
  }
}

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  $("write").hidden = name !== "write";
  $("score").hidden = name !== "score";
}

async function showModel() {
  try {
    const response = await fetch("/api/model");
    if (!response.ok) throw new Error(await errorOf(response));
    const m = await response.json();
    const val = m.validation_nats_per_char == null ? "?" : m.validation_nats_per_char.toFixed(4);
    $("model").textContent = `model ${m.fingerprint} · ${m.model.num_layers}×${m.model.hidden_size} ` +
      `${m.model.cell} · ${m.steps ?? "?"} steps · validation ${val} nats/char · ${m.vocab_size} characters`;
  } catch (e) {
    $("model").textContent = `cannot read the model's identity: ${e.message}`;
  }
}

$("settings").addEventListener("submit", (e) => { e.preventDefault(); generate(); });
$("stop-button").addEventListener("click", () => running && running.abort());
$("reseed").addEventListener("click", () => { $("seed").value = randomSeed(); });
$("score-button").addEventListener("click", score);
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
showModel();
if (urlToSettings()) generate();       // a shared link: run what it describes
