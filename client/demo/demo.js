// The demo page's script (a separate file: the server's CSP forbids inline scripts).
import { createTetherClient, ErrorCode } from "./tether.js";

const $ = (id) => document.getElementById(id);
const LOG_LIMIT = 200;

// The page is served at <TETHER_BASE_PATH>/: its directory is the server's base path.
const basePath = location.pathname.replace(/\/[^/]*$/, "");
// One connection for all tabs: the SharedWorker the server serves beside this page.
// `?share=tab` gives this tab a socket of its own; `?share=leader` elects a leader tab instead.
const share = new URLSearchParams(location.search).get("share");
const client = createTetherClient({
  basePath,
  share: share === "tab" ? "tab" : "auto",
  sharedWorkerUrl: share === "leader" ? undefined : `${basePath}/tether-worker.js`,
});
// For debugging and browser tests.
globalThis.tetherClient = client;

function log(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(item);
  while ($("log").childElementCount > LOG_LIMIT) $("log").lastElementChild.remove();
}

function showLoggedIn(loggedIn) {
  $("login-form").hidden = loggedIn;
  $("session").hidden = !loggedIn;
  if (!loggedIn) $("api-key").focus();
}

client.on("state", (state) => {
  $("state").textContent = state;
  $("state").dataset.state = state;
  log(`state: ${state}`);
  if (state === "unauthenticated") showLoggedIn(false);
});
client.on("error", (err) => log(`error: ${err.code} ${err.message}`));
client.on("welcome", ({ instance }) => {
  $("instance").textContent = instance;
  log(`welcome from ${instance}`);
});
client.on("recovery", ({ recovered, missed }) => log(`recovery: recovered=${recovered} missed=${missed}`));
client.on("session:ended", ({ reason }) => log(`session ended: ${reason}`));
client.on("job:progress", ({ step, steps }) => {
  $("progress-bar").max = steps;
  $("progress-bar").value = step;
  $("progress").textContent = `${step}/${steps}`;
});
client.on("job:done", ({ jobId }) => {
  $("progress").textContent += " done";
  log(`job ${jobId} done`);
});

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    await client.login($("api-key").value);
    $("api-key").value = "";
    showLoggedIn(true);
    client.connect();
  } catch (err) {
    $("login-error").textContent = err.code === ErrorCode.InvalidCredentials ? "Wrong API key." : err.message;
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await client.logout();
  } catch (err) {
    log(`logout failed: ${err.message}`);
  }
  $("instance").textContent = "—";
  showLoggedIn(false);
});

$("run-job").addEventListener("click", async () => {
  $("progress-bar").value = 0;
  $("progress").textContent = "starting…";
  const response = await fetch(`${basePath}/api/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ steps: 20, intervalMs: 200 }),
  }).catch((err) => ({ ok: false, status: 0, statusText: err.message }));
  if (response.ok) log(`job ${(await response.json()).jobId} started`);
  else log(`job not started: HTTP ${response.status} ${response.statusText}`);
});

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
    log(`session check failed: ${err.code} ${err.message}`);
    client.connect();
  },
);
