import { Worker } from "node:worker_threads";
import { ErrorCode } from "@tether/shared";
import type { Logger } from "pino";
import { TetherError } from "../errors.js";
import { serializeError } from "../observability/logger.js";
import type { Backend } from "../store/types.js";

/** How often the main thread proves it still runs (the heartbeat) and tells the probe thread its readiness. */
const HEARTBEAT_MS = 250;
/**
 * How often the store may be pinged for readiness: once in any such period in which `/readyz`
 * was asked (no checks, no pings: an idle instance costs Redis nothing for it).
 */
const STORE_PING_MS = 1_000;

/** Where each word the two threads share is, in 4-byte units (the probe thread is told them). */
enum Slot {
  /** `Date.now()` of the main thread's last heartbeat (BigInt64, two units). */
  Heartbeat = 0,
  /** A `Readiness` (Int32, after the heartbeat). */
  Readiness = 2,
  /** Set by the probe thread when `/readyz` was asked; cleared by the main thread's next ping (Int32). */
  Asked = 3,
}

enum Readiness {
  Starting = 0,
  Ready = 1,
  StoreUnreachable = 2,
  Draining = 3,
}

/** The bodies the probe thread answers with, made here so that they are Tether's own error bodies. */
const BODIES = {
  ok: JSON.stringify({ status: "ok" }),
  ready: JSON.stringify({ status: "ready" }),
  stalled: JSON.stringify(new TetherError(ErrorCode.Unavailable, "The instance's event loop has stopped.").toBody()),
  starting: JSON.stringify(new TetherError(ErrorCode.Unavailable, "The instance is starting.").toBody()),
  unreachable: JSON.stringify(new TetherError(ErrorCode.Unavailable, "Redis is unreachable.").toBody()),
  draining: JSON.stringify(new TetherError(ErrorCode.Unavailable, "This instance is shutting down.").toBody()),
  notFound: JSON.stringify(new TetherError(ErrorCode.NotFound, "Only /healthz and /readyz are served here.").toBody()),
};

/**
 * The probe thread's code: plain JavaScript, evaluated in a worker (no build step, no
 * loader: the same in the source tree, the package and the image). It reads the shared
 * words and answers; it never waits on the main thread. A small server: few connections,
 * short timeouts, small headers (it faces the load balancer, not clients).
 */
const PROBE_THREAD = `
const { workerData, parentPort } = require("node:worker_threads");
const http = require("node:http");
const { port, host, stallMs, shared, bodies, slots, states } = workerData;
const heartbeat = new BigInt64Array(shared, slots.heartbeat * 4, 1);
const readiness = new Int32Array(shared, slots.readiness * 4, 1);
const asked = new Int32Array(shared, slots.asked * 4, 1);
const byState = { [states.ready]: [200, bodies.ready], [states.storeUnreachable]: [503, bodies.unreachable],
  [states.draining]: [503, bodies.draining] };
function answer(res, status, body) {
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store",
    "Content-Length": Buffer.byteLength(body), "X-Content-Type-Options": "nosniff" });
  res.end(body);
}
const server = http.createServer({ maxHeaderSize: 4096, requestTimeout: 5000, headersTimeout: 5000,
  keepAliveTimeout: 5000 }, (req, res) => {
  const path = (req.url || "").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") return answer(res, 404, bodies.notFound);
  const alive = Date.now() - Number(Atomics.load(heartbeat, 0)) <= stallMs;
  if (path === "/healthz") return alive ? answer(res, 200, bodies.ok) : answer(res, 503, bodies.stalled);
  if (path !== "/readyz") return answer(res, 404, bodies.notFound);
  Atomics.store(asked, 0, 1);
  if (!alive) return answer(res, 503, bodies.stalled);
  const [status, body] = byState[Atomics.load(readiness, 0)] || [503, bodies.starting];
  return answer(res, status, body);
});
server.maxConnections = 64;
server.on("clientError", (_err, socket) => socket.destroy());
server.once("error", (err) => parentPort.postMessage({ error: err.message }));
server.listen(port, host, () => parentPort.postMessage({ port: server.address().port }));
parentPort.on("message", (m) => {
  if (m !== "close") return;
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
`;

/** The probe port: `/healthz` and `/readyz` answered by a thread of their own. */
export interface ProbePort {
  /** The port it listens on (the one asked for, or the one the system chose for 0). */
  readonly port: number;
  /** Writes the state now rather than at the next heartbeat (a drain that just began). */
  refresh(): void;
  close(): Promise<void>;
}

export interface ProbePortOptions {
  port: number;
  host: string;
  /** `/healthz` and `/readyz` answer 503 once the main thread has not run for this long. */
  stallMs: number;
  backend: Pick<Backend, "ping">;
  isDraining: () => boolean;
  logger: Logger;
}

/**
 * `/healthz` and `/readyz` for the load balancer, answered off the main event loop
 * (`TETHER_HEALTH_PORT`). In a reconnect storm the main loop serves thousands of
 * handshakes and token requests at once, and a check on the service's port waits
 * behind them: HAProxy would mark the busiest instance DOWN, the survivor of a failover
 * first, and answer 503 with no server left. Here a worker answers at once from what
 * the main thread last wrote: its heartbeat (stale past `stallMs`: the loop has stopped,
 * and both checks fail), draining, and the store's last ping (Redis and pub/sub; pinged at
 * most once a second, and only while `/readyz` is asked: its answer may be one check late).
 */
export async function startProbePort(options: ProbePortOptions): Promise<ProbePort> {
  const shared = new SharedArrayBuffer(16);
  const heartbeat = new BigInt64Array(shared, Slot.Heartbeat * 4, 1);
  const readiness = new Int32Array(shared, Slot.Readiness * 4, 1);
  const asked = new Int32Array(shared, Slot.Asked * 4, 1);
  let store = Readiness.Starting;
  let pinging = false;
  const pingStore = () => {
    if (pinging) return;
    pinging = true;
    Atomics.store(asked, 0, 0);
    options.backend.ping().then(
      () => {
        store = Readiness.Ready;
        pinging = false;
      },
      () => {
        store = Readiness.StoreUnreachable;
        pinging = false;
      },
    );
  };
  const beat = () => {
    Atomics.store(heartbeat, 0, BigInt(Date.now()));
    Atomics.store(readiness, 0, options.isDraining() ? Readiness.Draining : store);
  };
  pingStore();
  beat();
  const worker = new Worker(PROBE_THREAD, {
    eval: true,
    workerData: {
      ...{ port: options.port, host: options.host, stallMs: options.stallMs, shared, bodies: BODIES },
      slots: { heartbeat: Slot.Heartbeat, readiness: Slot.Readiness, asked: Slot.Asked },
      states: { ready: Readiness.Ready, storeUnreachable: Readiness.StoreUnreachable, draining: Readiness.Draining },
    },
    // It needs little: a small heap, and it never blocks the process's exit.
    resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
  });
  worker.unref();
  const port = await new Promise<number>((resolve, reject) => {
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the probe thread exited (${code})`)));
    worker.once("message", (m: { port?: number; error?: string }) =>
      m.port === undefined ? reject(new Error(`health port ${options.port}: ${m.error}`)) : resolve(m.port),
    );
  }).catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });
  // Past its start the thread has nothing that can fail but its own bugs: logged, never thrown here.
  worker.on("error", (err) => options.logger.error({ err: serializeError(err) }, "the health port's thread failed"));
  let closing = false;
  // Its checks then fail (nothing listens), the load balancer stops sending clients here: said once, loudly.
  const exited = new Promise<void>((resolve) =>
    worker.once("exit", (code) => {
      if (!closing) options.logger.error({ code, port }, "the health port's thread exited: its checks now fail");
      resolve();
    }),
  );
  const pingIfAsked = () => {
    if (Atomics.load(asked, 0) === 1) pingStore();
  };
  const timers = [setInterval(beat, HEARTBEAT_MS), setInterval(pingIfAsked, STORE_PING_MS)];
  for (const timer of timers) timer.unref();
  return {
    port,
    refresh: beat,
    close: async () => {
      closing = true;
      for (const timer of timers) clearInterval(timer);
      worker.postMessage("close");
      await exited;
    },
  };
}
