// The demo page's script (a separate file: the server's CSP forbids inline scripts).
import { messageFor, recoveryFailureMessage, STATE_LABELS, sessionEndMessage } from "./messages.js";
import { createTetherClient, ErrorCode } from "./tether.js";

const $ = (id) => document.getElementById(id);
/** The log grows with the page (no scroll box of its own): the latest entries only. */
const LOG_LIMIT = 100;
/** How often the badge's countdown and the reliability figures are refreshed. */
const STATS_POLL_MS = 500;
/** The job the "Run job" button starts. */
const JOB = { steps: 20, intervalMs: 200 };
/** A running job that sends nothing for this many step intervals while we are connected is taken for dead… */
const STALL_INTERVALS = 3;
/** …but never sooner than this (events cross Redis and the network). */
const MIN_STALL_MS = 1_000;
/** The chart's viewBox, and the fewest bar slots it is divided into (more as samples come, up to STATS_SAMPLES). */
const CHART = { width: 480, height: 96, minSlots: 20 };
const SVG_NS = "http://www.w3.org/2000/svg";

// The page is served at <TETHER_BASE_PATH>/: its directory is the server's base path.
const basePath = location.pathname.replace(/\/[^/]*$/, "");
// One connection for all tabs: the SharedWorker the server serves beside this page.
// `?share=tab` gives this tab a socket of its own; `?share=leader` elects a leader tab instead.
const share = new URLSearchParams(location.search).get("share");
const perTab = share === "tab";
const client = createTetherClient({
  basePath,
  share: perTab ? "tab" : "auto",
  sharedWorkerUrl: share === "leader" ? undefined : `${basePath}/tether-worker.js`,
});
// For debugging and browser tests.
globalThis.tetherClient = client;

// What the server said about itself in the page's <head> (see server/src/http/demo.ts).
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") ?? undefined;
const server = { store: meta("tether-store"), apiKey: meta("tether-api-key") };

/** The page's own view of things, on top of the client's. */
const view = {
  /** The instance of the live connection, if any. */
  instance: undefined,
  /** The latest failure since the last connect, as the client reported it. */
  lastError: undefined,
  /** Why the session ended, when the server said (`session:ended`). */
  endReason: undefined,
  /** The user logged out with this page's button. */
  loggedOut: false,
  online: navigator.onLine,
  /** The job on the card: { id, instance, intervalMs, step, steps, state, stallTimer }. */
  job: undefined,
};

function log(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(item);
  while ($("log").childElementCount > LOG_LIMIT) $("log").lastElementChild.remove();
}

/** Sets an element's text only when it changes (a live region would repeat itself otherwise). */
function setText(id, text) {
  const element = $(id);
  if (element.textContent !== text) element.textContent = text;
}

// ---- Login form and session panel ----

function showLoggedIn(loggedIn) {
  const wasHidden = $("login-form").hidden;
  $("login-form").hidden = loggedIn;
  $("session").hidden = !loggedIn;
  if (!loggedIn) {
    renderLoginNotice();
    if (wasHidden) $("api-key").focus();
  }
}

function renderLoginNotice() {
  let notice = "";
  if (view.endReason !== undefined) notice = sessionEndMessage(view.endReason);
  else if (view.loggedOut) notice = "You are logged out.";
  else if (client.state === "unauthenticated") notice = messageFor({ code: ErrorCode.SessionExpired });
  $("login-notice").hidden = notice === "";
  setText("login-notice", notice);
}

function renderServerInfo() {
  const embedded = server.store === "embedded";
  $("embedded-notice").hidden = !embedded;
  $("embedded-key").hidden = server.apiKey !== "generated";
  const store = { embedded: "In this process (embedded mode)", redis: "Redis, shared by every instance" };
  setText("store", store[server.store] ?? "—");
}

// ---- Connection badge, status line and buttons ----

function render() {
  const state = client.state;
  const connected = state === "connected";
  $("state").dataset.state = state;
  setText("state", STATE_LABELS[state] ?? state);
  // An instance shown is one we are connected to: gone with the socket.
  if (!connected) view.instance = undefined;
  setText("instance", view.instance ?? "—");
  renderRetry();
  renderStatus();
  renderButtons();
}

function renderRetry() {
  const state = client.state;
  const { nextRetryAt } = client.stats();
  const waiting = (state === "connecting" || state === "reconnecting") && nextRetryAt !== undefined;
  const inMs = waiting ? nextRetryAt - Date.now() : 0;
  $("retry").hidden = !(inMs > 0);
  if (inMs > 0) setText("retry-countdown", `retrying in ${Math.ceil(inMs / 1000)} s`);
}

function renderStatus() {
  const state = client.state;
  let status;
  if (state === "connected") status = view.instance ? `Connected to instance ${view.instance}.` : "Connected.";
  else if (!view.online) status = "You are offline. The page reconnects when the network is back.";
  else if (state === "connecting" || state === "reconnecting")
    status = view.lastError ? `${messageFor(view.lastError)} Reconnecting…` : `${STATE_LABELS[state]}…`;
  else if (state === "unauthenticated")
    status = view.endReason ? sessionEndMessage(view.endReason) : messageFor({ code: ErrorCode.SessionExpired });
  else status = "";
  setText("status", status);
}

function renderButtons() {
  const connected = client.state === "connected";
  const starting = view.job?.state === "starting";
  let reason = "";
  if (!view.online) reason = "You are offline: a job can start once the network is back.";
  else if (!connected) reason = "Not connected: a job can start once the connection is back.";
  else if (starting) reason = "Starting the job…";
  $("run-job").disabled = reason !== "";
  setText("run-job-reason", reason);
}

// ---- The job card ----

function renderJob() {
  const job = view.job;
  $("job").dataset.job = job?.state ?? "idle";
  if (!job) {
    $("progress-bar").max = 1;
    $("progress-bar").value = 0;
    setText("progress", "—");
    setText("job-status", "No job yet.");
    return;
  }
  if (job.steps !== undefined) {
    $("progress-bar").max = job.steps;
    $("progress-bar").value = job.step;
  }
  const count = job.steps === undefined ? "—" : `${job.step}/${job.steps}`;
  setText("progress", job.state === "done" ? `${count} done` : count);
  const where = job.instance ? ` on instance ${job.instance}` : "";
  const waiting = client.state === "connected" ? "" : " Its progress shows once the connection is back.";
  const status = {
    starting: "Starting…",
    running: `Running${where}.${waiting}`,
    done: "Done.",
    stopped: "Stopped: its server instance went away — run it again.",
    failed: `Not started: ${job.error ?? ""}`,
  };
  setText("job-status", status[job.state] ?? "");
}

function stallMsOf(job) {
  return Math.max(STALL_INTERVALS * job.intervalMs, MIN_STALL_MS);
}

/**
 * While connected, a running job sends a step every interval. Silence for a few
 * intervals (after a reconnect, or not) means the instance running it is gone:
 * jobs live in their instance's process and die with it.
 */
function watchJob() {
  const job = view.job;
  if (!job) return;
  clearTimeout(job.stallTimer);
  job.stallTimer = undefined;
  // A job started elsewhere is watched once two of its steps have shown its pace.
  if (job.state !== "running" || client.state !== "connected" || job.intervalMs === undefined) return;
  job.stallTimer = setTimeout(() => stopJob(job, "no events"), stallMsOf(job));
}

function stopJob(job, why) {
  if (view.job !== job || job.state !== "running") return;
  clearTimeout(job.stallTimer);
  job.state = "stopped";
  log(`job ${job.id} stopped (${why}): its instance ${job.instance ?? "?"} went away`);
  renderJob();
}

/**
 * The card's job for an event of `jobId`, or undefined. A job the user started elsewhere
 * (another tab) takes the card only when it shows no job in progress.
 */
function jobFor(jobId) {
  const current = view.job;
  if (current?.id === jobId) return current;
  if (current?.state === "starting" || current?.state === "running") return undefined;
  clearTimeout(current?.stallTimer);
  view.job = { id: jobId, instance: undefined, intervalMs: undefined, step: 0, steps: undefined, state: "running" };
  return view.job;
}

async function runJob() {
  clearTimeout(view.job?.stallTimer);
  const job = { id: undefined, instance: undefined, intervalMs: JOB.intervalMs, step: 0, steps: JOB.steps };
  view.job = { ...job, state: "starting" };
  renderJob();
  renderButtons();
  const started = view.job;
  let failure;
  try {
    const response = await fetch(`${basePath}/api/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(JOB),
    });
    const body = await response.json().catch(() => undefined);
    if (response.ok) {
      const { jobId, instance } = body;
      // Its first steps may have come before this answer: the card already shows that job.
      const current = view.job?.id === jobId ? view.job : started;
      Object.assign(current, { id: jobId, instance, intervalMs: JOB.intervalMs, steps: JOB.steps });
      if (current.state === "starting") current.state = "running";
      view.job = current;
      log(`job ${jobId} started on instance ${instance}`);
    } else {
      failure = { code: body?.error?.code ?? "BAD_RESPONSE" };
      log(`job not started: HTTP ${response.status} ${body?.error?.code ?? ""} ${body?.error?.message ?? ""}`);
    }
  } catch (err) {
    failure = { code: "NETWORK_ERROR" };
    log(`job not started: ${err.message}`);
  }
  if (failure && view.job === started) Object.assign(started, { state: "failed", error: messageFor(failure) });
  watchJob();
  renderJob();
  renderButtons();
}

// ---- Reliability figures and the shared socket ----

let lastFigures = "";

function renderStats() {
  const stats = client.stats();
  const key = JSON.stringify([
    stats.mode,
    stats.tabs,
    stats.connects,
    stats.disconnects,
    stats.reconnectTimesMs,
    stats.replaySizes,
    stats.recoveries,
  ]);
  if (key === lastFigures) return;
  lastFigures = key;

  setText("count-connects", String(stats.connects));
  setText("count-disconnects", String(stats.disconnects));
  setText("count-recovered", String(stats.recoveries.recovered));
  const failed = Object.entries(stats.recoveries.failed).filter(([, n]) => n > 0);
  setText("count-failed", String(failed.reduce((sum, [, n]) => sum + n, 0)));
  $("failed-reasons").hidden = failed.length === 0;
  setText(
    "failed-reasons",
    `Not recovered: ${failed.map(([reason, n]) => `${n} × ${recoveryFailureMessage(reason)}`).join("; ")}.`,
  );
  const replayed = stats.replaySizes.reduce((sum, n) => sum + n, 0);
  setText("count-replayed", String(replayed));
  drawChart(stats.reconnectTimesMs);
  renderSharing(stats);
}

/** A round scale just above `max` ms: 100 ms, 200 ms, 500 ms, 1 s, 2 s, … */
function scaleOf(max) {
  for (const step of [100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000])
    if (max <= step) return step;
  return Math.ceil(max / 600_000) * 600_000;
}

const seconds = (ms) => (ms < 1_000 ? `${Math.round(ms)} ms` : `${(ms / 1_000).toFixed(1)} s`);

function drawChart(samples) {
  const bars = $("chart-bars");
  const rows = $("chart-rows");
  bars.replaceChildren();
  rows.replaceChildren();
  if (samples.length === 0) {
    setText("chart-caption", "Time to reconnect: no reconnects yet.");
    return;
  }
  const scale = scaleOf(Math.max(...samples));
  const slot = CHART.width / Math.max(CHART.minSlots, samples.length);
  const top = 16;
  const usable = CHART.height - top;
  // The newest sample on the right.
  samples.forEach((ms, i) => {
    const height = Math.max(1, (Math.min(ms, scale) / scale) * usable);
    const rect = document.createElementNS(SVG_NS, "rect");
    rect.setAttribute("class", "bar");
    rect.setAttribute("x", String(CHART.width - (samples.length - i) * slot + 1));
    rect.setAttribute("y", String(CHART.height - height));
    rect.setAttribute("width", String(slot - 2));
    rect.setAttribute("height", String(height));
    bars.append(rect);
    const row = document.createElement("tr");
    for (const text of [String(i + 1), String(Math.round(ms))]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    rows.append(row);
  });
  const grid = document.createElementNS(SVG_NS, "line");
  grid.setAttribute("class", "grid");
  for (const [name, value] of [
    ["x1", 0],
    ["x2", CHART.width],
    ["y1", top + 0.5],
    ["y2", top + 0.5],
  ])
    grid.setAttribute(name, String(value));
  const label = document.createElementNS(SVG_NS, "text");
  label.setAttribute("class", "label");
  label.setAttribute("x", "2");
  label.setAttribute("y", String(top - 5));
  label.textContent = seconds(scale);
  bars.append(grid, label);

  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const slowest = sorted[sorted.length - 1];
  const n = samples.length;
  setText(
    "chart-caption",
    `Time to reconnect, last ${n} reconnect${n === 1 ? "" : "s"}: median ${seconds(median)}, slowest ${seconds(slowest)}.`,
  );
}

function renderSharing({ mode, tabs }) {
  setText("share-mode", mode);
  setText("share-tabs", `${tabs} tab${tabs === 1 ? "" : "s"} on this socket`);
  const explain = {
    tab: perTab
      ? "This tab has a socket of its own, as asked (?share=tab)."
      : "This tab has a socket of its own: no other tab shares it.",
    worker: `A shared worker holds one socket for this site; ${tabs} tab${tabs === 1 ? "" : "s"} use it.`,
    leader: `This tab holds the socket and serves the site's other tabs through it (${tabs} in all).`,
    follower: `This tab uses the socket another tab holds (${tabs} tabs share it).`,
  };
  setText("share-explain", explain[mode] ?? "");
}

function renderShareLinks() {
  $("open-tab").href = `./${location.search}`;
  $("share-toggle").href = perTab ? "./" : "?share=tab";
  setText("share-toggle", perTab ? "Share one socket across tabs" : "Use a socket per tab");
}

// ---- Client events ----

client.on("state", (state) => {
  log(`state: ${state}`);
  if (state === "connected") view.lastError = undefined;
  if (state === "unauthenticated") showLoggedIn(false);
  render();
  renderJob();
  renderStats();
  watchJob();
});
client.on("error", (err) => {
  view.lastError = err;
  // The raw detail goes to the log; the page says it in words.
  log(`error: ${err.code} ${err.message}`);
  renderStatus();
});
client.on("welcome", ({ instance }) => {
  view.instance = instance;
  log(`welcome from ${instance}`);
  render();
  watchJob();
});
client.on("recovery", ({ recovered, missed, reason, room }) => {
  log(`recovery${room ? ` of ${room}` : ""}: recovered=${recovered} missed=${missed}${reason ? ` (${reason})` : ""}`);
  const job = view.job;
  // The job's events are lost and we are on another instance: it cannot be told apart from a dead one.
  if (!recovered && !room && job?.state === "running" && job.instance && job.instance !== view.instance)
    stopJob(job, "not recovered");
});
client.on("session:ended", ({ reason }) => {
  view.endReason = reason;
  log(`session ended: ${reason}`);
  // The client may have switched to "unauthenticated" before this listener ran.
  renderLoginNotice();
  renderStatus();
});
client.on("job:progress", ({ jobId, step, steps }) => {
  const job = jobFor(jobId);
  if (!job) return;
  if (job.state === "starting" || job.state === "stopped") job.state = "running";
  const now = Date.now();
  if (job.intervalMs === undefined && job.lastStepAt !== undefined && step > job.step)
    job.intervalMs = (now - job.lastStepAt) / (step - job.step);
  job.lastStepAt = now;
  job.step = step;
  job.steps = steps;
  watchJob();
  renderJob();
});
client.on("job:done", ({ jobId }) => {
  const job = jobFor(jobId);
  if (!job) return;
  clearTimeout(job.stallTimer);
  job.state = "done";
  if (job.steps !== undefined) job.step = job.steps;
  log(`job ${jobId} done`);
  renderJob();
  renderButtons();
});

// ---- The page's own controls ----

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  setText("login-error", "");
  $("login").disabled = true;
  try {
    await client.login($("api-key").value);
    $("api-key").value = "";
    Object.assign(view, { endReason: undefined, loggedOut: false, lastError: undefined });
    showLoggedIn(true);
    client.connect();
  } catch (err) {
    log(`login failed: ${err.code} ${err.message}`);
    setText("login-error", messageFor(err));
  } finally {
    $("login").disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await client.logout();
  } catch (err) {
    // The session is still there (the server never heard us): stay, and say so.
    log(`logout failed: ${err.code} ${err.message}`);
    setText("status", `Not logged out: ${messageFor(err)}`);
    client.connect();
    return;
  }
  clearTimeout(view.job?.stallTimer);
  Object.assign(view, { loggedOut: true, endReason: undefined, job: undefined });
  renderJob();
  showLoggedIn(false);
  render();
});

$("run-job").addEventListener("click", () => {
  runJob();
});

$("retry-now").addEventListener("click", () => {
  // The button goes away with the pending retry: keep the focus near it.
  $("state").focus();
  client.reconnectNow();
  render();
});

for (const name of ["online", "offline"]) {
  window.addEventListener(name, () => {
    view.online = navigator.onLine;
    log(view.online ? "the browser is online" : "the browser is offline");
    render();
  });
}

setInterval(() => {
  renderRetry();
  renderStats();
}, STATS_POLL_MS);

renderServerInfo();
renderShareLinks();
renderJob();
render();
renderStats();

// A reload keeps the user logged in: the session cookie is still there.
client.session().then(
  () => {
    showLoggedIn(true);
    client.connect();
  },
  (err) => {
    const gone = err.code === ErrorCode.SessionRequired || err.code === ErrorCode.SessionExpired;
    showLoggedIn(!gone);
    if (gone) return;
    // Not a definitive "logged out" (server down, network): let the connection loop find out.
    view.lastError = err;
    log(`session check failed: ${err.code} ${err.message}`);
    client.connect();
  },
);
