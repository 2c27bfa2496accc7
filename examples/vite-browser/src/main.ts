// A browser app on @tether/client. The dev server proxies /api and /socket.io to a
// Tether server (vite.config.ts), so the session cookie is first-party: no CORS, no
// TETHER_ALLOWED_ORIGINS. Bundlers pick the SDK's browser build (no Node cookie jar).
import { createTetherClient, type TetherState } from "@tether/client";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const stateOutput = $<HTMLOutputElement>("state");
const events = $<HTMLOListElement>("events");
const runJob = $<HTMLButtonElement>("run-job");
const logout = $<HTMLButtonElement>("logout");

function log(text: string): void {
  const item = document.createElement("li");
  item.textContent = text;
  events.prepend(item);
}

const client = createTetherClient(); // the page's own origin
client.on("state", (state: TetherState) => {
  stateOutput.value = state;
  runJob.disabled = state !== "connected";
  logout.disabled = state === "closed" || state === "unauthenticated";
});
client.on("welcome", ({ instance }) => log(`welcome from ${instance}`));
client.on("job:progress", ({ jobId, step, steps }) => log(`job ${jobId}: ${step}/${steps}`));
client.on("job:done", ({ jobId }) => log(`job ${jobId} done`));
client.on("recovery", ({ recovered, missed }) =>
  log(recovered ? `recovered ${missed} missed events` : "recovery failed: refetch"),
);
client.on("session:ended", ({ reason }) => log(`session ended (${reason}): log in again`));
client.on("error", (error) => log(`${error.code}: ${error.message}`));

// Already signed in (a reload)? Then connect at once.
client.session().then(
  () => client.connect(),
  () => undefined,
);

$<HTMLFormElement>("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await client.login($<HTMLInputElement>("api-key").value);
    client.connect();
  } catch (error) {
    log(`login failed: ${(error as Error).message}`);
  }
});

// The standalone server's demo workload (POST /api/jobs): progress events pushed to this user.
runJob.addEventListener("click", async () => {
  const res = await fetch("/api/jobs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ steps: 5, intervalMs: 300 }),
  });
  if (!res.ok) log(`job refused: ${res.status}`);
});

logout.addEventListener("click", () => void client.logout());
