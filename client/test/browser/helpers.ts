import { execFileSync } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import type {
  JobDonePayload,
  JobProgressPayload,
  RecoveryPayload,
  SessionEndedPayload,
  WelcomePayload,
} from "@tether/shared";
import { WAIT_MS } from "@tether/testkit/browser";
import { waitFor } from "@tether/testkit/wait";
import type { BrowserContext, Page } from "playwright-core";
import type { TetherState } from "../../src/types.js";

const CLIENT_DIR = resolve(import.meta.dirname, "../..");
const BUNDLE = join(CLIENT_DIR, "demo/tether.js");
/** The SharedWorker script, built by the same script; the server serves it beside the page. */
const WORKER_BUNDLE = join(CLIENT_DIR, "dist/tether-worker.js");
const LOCK = join(CLIENT_DIR, "demo/.tether.js.lock");
/** A build takes about a second: a lock this old was left by a crashed run. */
const STALE_LOCK_MS = 30_000;

/** Newest modification time of the files under `dir`, in ms. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function bundleIsFresh(): boolean {
  const sources = Math.max(newestMtime(join(CLIENT_DIR, "src")), newestMtime(join(CLIENT_DIR, "../shared/src")));
  return [BUNDLE, WORKER_BUNDLE].every((file) => existsSync(file) && statSync(file).mtimeMs >= sources);
}

/**
 * The demo page needs the SDK bundles (client/demo/tether.js, and the SharedWorker's
 * client/dist/tether-worker.js). Builds them with the
 * client's own esbuild script when it is missing or older than the SDK sources;
 * test files run in parallel, so one builds under a lock while the others wait.
 */
export async function ensureDemoBundle(): Promise<void> {
  await waitFor(
    "the demo bundle (client/demo/tether.js)",
    () => {
      if (bundleIsFresh()) return true;
      let lock: number;
      try {
        lock = openSync(LOCK, "wx");
      } catch {
        // Another file is building it; a lock left by a crashed run is taken over.
        const lockedAt = statSync(LOCK, { throwIfNoEntry: false })?.mtimeMs;
        if (lockedAt !== undefined && Date.now() - lockedAt > STALE_LOCK_MS) rmSync(LOCK, { force: true });
        return false;
      }
      try {
        if (!bundleIsFresh()) execFileSync(process.execPath, ["build-browser.mjs"], { cwd: CLIENT_DIR, stdio: "pipe" });
      } finally {
        closeSync(lock);
        rmSync(LOCK, { force: true });
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
}

/** What the demo page's client went through, recorded in the page from its very first state. */
export interface PageRecord {
  states: TetherState[];
  welcomes: WelcomePayload[];
  progress: JobProgressPayload[];
  done: JobDonePayload[];
  recoveries: RecoveryPayload[];
  ended: SessionEndedPayload[];
  /** `"<code> <message>"` of every "error" event. */
  errors: string[];
  /** Every visibilitychange, as the new visibilityState. */
  visibility: string[];
  /** Longest gap between two ticks of a 50 ms interval: how long the page's timers stood still. */
  maxTimerGapMs: number;
}

/**
 * Runs before demo.js: when demo.js sets `globalThis.tetherClient`, listeners are
 * added before any of its own, so nothing is missed. A string, not a function, so
 * that no transpiler helper leaks into the page.
 */
const RECORDER = `(() => {
  const record = { states: [], welcomes: [], progress: [], done: [], recoveries: [], ended: [], errors: [], visibility: [], maxTimerGapMs: 0 };
  Object.defineProperty(globalThis, "tetherRecord", { value: record });
  let last = Date.now();
  setInterval(() => {
    const now = Date.now();
    record.maxTimerGapMs = Math.max(record.maxTimerGapMs, now - last);
    last = now;
  }, 50);
  document.addEventListener("visibilitychange", () => record.visibility.push(document.visibilityState));
  let client;
  Object.defineProperty(globalThis, "tetherClient", {
    configurable: true,
    enumerable: true,
    get: () => client,
    set: (value) => {
      client = value;
      value.on("state", (state) => record.states.push(state));
      value.on("welcome", (payload) => record.welcomes.push(payload));
      value.on("job:progress", (payload) => record.progress.push(payload));
      value.on("job:done", (payload) => record.done.push(payload));
      value.on("recovery", (payload) => record.recoveries.push(payload));
      value.on("session:ended", (payload) => record.ended.push(payload));
      value.on("error", (error) => record.errors.push(error.code + " " + error.message));
    },
  });
})();`;

/** Runs in the page: the login form is shown and the session panel hidden. */
const loginFormVisible = () =>
  !(document.getElementById("login-form") as HTMLFormElement).hidden &&
  (document.getElementById("session") as HTMLElement).hidden;

/** The demo page in one tab, with what its client did recorded. */
export class DemoPage {
  /** Uncaught errors in the page: a test ends by expecting none. */
  readonly pageErrors: string[] = [];
  /** Every request the page made, as `METHOD pathname`. */
  readonly requests: string[] = [];
  /** How many WebSockets the page opened (or tried to). */
  webSockets = 0;

  private constructor(readonly page: Page) {
    page.on("pageerror", (err) => this.pageErrors.push(err.message));
    page.on("request", (req) => this.requests.push(`${req.method()} ${new URL(req.url()).pathname}`));
    page.on("websocket", () => {
      this.webSockets += 1;
    });
  }

  /** Opens `url` (a Tether instance or a balancer in front of some) in a new tab of `context`. */
  static async open(context: BrowserContext, url: string): Promise<DemoPage> {
    const page = await context.newPage();
    await page.addInitScript({ content: RECORDER });
    const demo = new DemoPage(page);
    await page.goto(url);
    return demo;
  }

  record(): Promise<PageRecord> {
    return this.page.evaluate(() => (globalThis as unknown as { tetherRecord: PageRecord }).tetherRecord);
  }

  /** How many requests to `pathname` the page made (any method). */
  requestCount(pathname: string): number {
    return this.requests.filter((line) => line.endsWith(` ${pathname}`)).length;
  }

  /**
   * Waits until both the client and the page's badge show `state`. Polls on a timer,
   * not on animation frames, which a hidden page does not get.
   */
  async waitForState(state: TetherState, timeoutMs = WAIT_MS): Promise<void> {
    await this.page.waitForFunction(
      (wanted) =>
        (globalThis as unknown as { tetherClient?: { state: string } }).tetherClient?.state === wanted &&
        document.getElementById("state")?.dataset.state === wanted,
      state,
      { timeout: timeoutMs, polling: 50 },
    );
  }

  /** Waits until the element `#id` reads exactly `text`. */
  async waitForText(id: string, text: string, timeoutMs = WAIT_MS): Promise<void> {
    await this.page.waitForFunction(
      (wanted) => document.getElementById(wanted.id)?.textContent === wanted.text,
      { id, text },
      { timeout: timeoutMs, polling: 50 },
    );
  }

  /** Waits until the page shows `instance` as the instance it is connected to. */
  waitForInstance(instance: string, timeoutMs = WAIT_MS): Promise<void> {
    return this.waitForText("instance", instance, timeoutMs);
  }

  /** The client's state as it is now. */
  state(): Promise<string | undefined> {
    return this.page.evaluate(
      () => (globalThis as unknown as { tetherClient?: { state: string } }).tetherClient?.state,
    );
  }

  /** Waits until the login form is shown and the session panel hidden. */
  async waitForLoginForm(timeoutMs = WAIT_MS): Promise<void> {
    await this.page.waitForFunction(loginFormVisible, null, { timeout: timeoutMs, polling: 50 });
  }

  /** Whether the login form is shown (and the session panel hidden) right now. */
  loginFormShown(): Promise<boolean> {
    return this.page.evaluate(loginFormVisible);
  }

  /** Types the key into the login form and submits it, as a person would. */
  async login(apiKey: string): Promise<void> {
    await this.page.locator("#login-form").waitFor({ state: "visible", timeout: WAIT_MS });
    await this.page.fill("#api-key", apiKey);
    await this.page.click("#login");
  }

  /** Starts a job as this tab's user (same-origin fetch with the session cookie); returns its id. */
  async startJob(steps: number, intervalMs: number): Promise<string> {
    return this.page.evaluate(
      async ({ steps, intervalMs }) => {
        const res = await fetch("/api/jobs", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ steps, intervalMs }),
        });
        if (res.status !== 202) throw new Error(`POST /api/jobs: HTTP ${res.status} ${await res.text()}`);
        return ((await res.json()) as { jobId: string }).jobId;
      },
      { steps, intervalMs },
    );
  }

  /**
   * Waits for the `count`-th `welcome` (one comes right after each connect, so a
   * "connected" state may be seen before it) and returns it.
   */
  async waitForWelcome(count: number, timeoutMs = WAIT_MS): Promise<WelcomePayload> {
    const welcome = await this.page.waitForFunction(
      (n) => (globalThis as unknown as { tetherRecord: PageRecord }).tetherRecord.welcomes[n - 1],
      count,
      { timeout: timeoutMs, polling: 50 },
    );
    return (await welcome.jsonValue()) as WelcomePayload;
  }

  /** Waits until the page has received `job:done` for `jobId`. */
  async waitForJobDone(jobId: string, timeoutMs = WAIT_MS): Promise<void> {
    await this.page.waitForFunction(
      (id) =>
        (globalThis as unknown as { tetherRecord: PageRecord }).tetherRecord.done.some((done) => done.jobId === id),
      jobId,
      { timeout: timeoutMs, polling: 50 },
    );
  }

  /** Waits until the page has received at least `count` progress events of `jobId`. */
  async waitForProgress(jobId: string, count: number, timeoutMs = WAIT_MS): Promise<void> {
    await this.page.waitForFunction(
      ({ id, count }) =>
        (globalThis as unknown as { tetherRecord: PageRecord }).tetherRecord.progress.filter(
          (event) => event.jobId === id,
        ).length >= count,
      { id: jobId, count },
      { timeout: timeoutMs, polling: 50 },
    );
  }

  close(): Promise<void> {
    return this.page.close();
  }
}

/** The steps of `jobId` the page's listeners received, in order of arrival. */
export function stepsOf(record: PageRecord, jobId: string): number[] {
  return record.progress.filter((event) => event.jobId === jobId).map((event) => event.step);
}

/** 1, 2, …, n */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

/** A tiny static site on another loopback address: another origin, and another site, for Chromium. */
export interface StaticSite {
  readonly url: string;
  close(): Promise<void>;
}

export async function startStaticSite(host: string, html: string): Promise<StaticSite> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(html);
  });
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(0, host, () => done());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
