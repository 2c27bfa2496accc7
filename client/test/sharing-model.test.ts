import { fc, it } from "@fast-check/vitest";
import type { Offset } from "@tether/shared";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { waitFor } from "@tether/testkit/wait";
import fetchCookie from "fetch-cookie";
import { CookieJar } from "tough-cookie";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { createPublisher, loadConfig, type WorkerPublisher } from "../../server/src/index.js";
import { type ClientConfig, connectionConfig } from "../src/config.js";
import type { FetchLike } from "../src/cookies.js";
import { OffsetBook, type OffsetStore } from "../src/offset-book.js";
import { Hub, hubConnection } from "../src/sharing/hub.js";
import type { HubMessage, TabId } from "../src/sharing/protocol.js";
import { SharedTabClient } from "../src/sharing/tab-client.js";

/**
 * Model-based check of the shared connection: random interleavings of events
 * published to the user, tabs opening and reloading (their offsets kept in their
 * own storage), the hub dying and another taking over (a leader tab closed), and
 * the socket dropping, against a real instance and Redis. Every tab — across its
 * reloads — must deliver the user's events in order, none twice and, once things
 * settle, none missing from the first it delivered to the last published.
 * A failure prints fast-check's seed and path; FC_SEED=<seed> replays it.
 */

const API_KEY = "sharing-model-api-key-0123456789";
const USER = "admin";
const EVENT = "model:event";
const SETTLE_MS = 10_000;

type Op =
  | { kind: "publish"; count: number }
  | { kind: "open" }
  | { kind: "reload"; slot: number }
  | { kind: "close"; slot: number }
  | { kind: "replaceHub" }
  | { kind: "dropSocket" }
  | { kind: "pause"; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("publish" as const), count: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: "open" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("reload" as const), slot: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("close" as const), slot: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "replaceHub" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "dropSocket" as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("pause" as const), ms: fc.integer({ min: 0, max: 40 }) }) },
);

/** A tab's `sessionStorage`: survives its reloads. */
function memoryStore(): OffsetStore {
  let saved: { offsets: Record<string, Offset>; savedAt: number } | undefined;
  return {
    load: () => saved,
    save: (offsets) => {
      saved = { offsets, savedAt: Date.now() };
    },
    clear: () => {
      saved = undefined;
    },
  };
}

/** One browser tab over its reloads: its storage, what it delivered, and the page loaded now (if open). */
interface Slot {
  store: OffsetStore;
  delivered: number[];
  page: SharedTabClient | undefined;
}

/**
 * One origin's tabs and the hub serving them, all in this process: messages go
 * through microtasks, in order, as they do through a port or a BroadcastChannel.
 */
class Origin {
  readonly slots: Slot[] = [];
  private hub: Hub | undefined;
  private readonly pages = new Map<TabId, SharedTabClient>();
  private readonly gone = new Map<TabId, () => void>();

  constructor(private readonly config: ClientConfig) {}

  startHub(): void {
    const client = hubConnection(this.config);
    let hub: Hub | undefined;
    hub = new Hub(client, {
      // A dead hub's messages go nowhere, as a closed tab's.
      send: (message) => {
        if (hub === undefined || this.hub === hub) this.deliver(message);
      },
      watchTab: (tab, onGone) => this.gone.set(tab, onGone),
    });
    this.hub = hub;
  }

  /** The hub's tab closes: its socket goes with it; the next hub says hello. */
  replaceHub(): void {
    const old = this.hub;
    this.hub = undefined;
    old?.client.disconnect();
    this.gone.clear();
    this.startHub();
  }

  /** The connection drops (a network blip). Only an open one: closing an engine that is still opening is socket.io-client's own abort, not a fault. */
  dropSocket(): void {
    const client = this.hub?.client;
    if (client?.state === "connected") client.socket.io.engine.close();
  }

  open(slot: Slot): void {
    const page = new SharedTabClient(this.config.http, new OffsetBook(slot.store));
    (page as unknown as { on(event: string, listener: (payload: { seq: number }) => void): void }).on(
      EVENT,
      (payload) => slot.delivered.push(payload.seq),
    );
    slot.page = page;
    this.pages.set(page.tab, page);
    page.attach({
      send: (message) => queueMicrotask(() => this.hub?.receive(message)),
      mode: () => "follower",
      socket: () => undefined,
    });
    page.connect();
  }

  close(slot: Slot): void {
    const page = slot.page;
    if (!page) return;
    slot.page = undefined;
    this.pages.delete(page.tab);
    const onGone = this.gone.get(page.tab);
    this.gone.delete(page.tab);
    if (onGone) queueMicrotask(onGone);
  }

  /** The connection's own recovery figures, which every tab's `stats()` should show. */
  recoveries(): string {
    return JSON.stringify(this.hub?.client.stats().recoveries);
  }

  /** For a failure's message. */
  describe(): string {
    const client = this.hub?.client;
    return `hub ${client?.state} offset ${client?.lastOffset} stats ${JSON.stringify(client?.stats())}`;
  }

  shutdown(): void {
    for (const slot of this.slots) this.close(slot);
    this.hub?.client.disconnect();
    this.hub = undefined;
  }

  private deliver(message: HubMessage): void {
    const to = "to" in message && message.to !== undefined ? message.to : [...this.pages.keys()];
    for (const tab of to) {
      const page = this.pages.get(tab);
      if (page) queueMicrotask(() => page.receive(message));
    }
  }
}

describe("tabs sharing one connection, under random interleavings", () => {
  let redis: TestRedis;
  let instance: TestInstance;
  let publisher: WorkerPublisher;
  let config: ClientConfig;
  let seq = 0;

  beforeAll(async () => {
    redis = await startRedis();
    instance = await startInstance({ REDIS_URL: redis.url, TETHER_API_KEY: API_KEY });
    publisher = await createPublisher(loadConfig({ REDIS_URL: redis.url, LOG_LEVEL: "silent" }));
    const jar = new CookieJar();
    config = connectionConfig(
      {
        url: instance.url,
        fetch: fetchCookie(fetch, jar) as unknown as FetchLike,
        transports: ["websocket"],
        reconnectBaseDelayMs: 20,
        reconnectMaxDelayMs: 200,
      },
      undefined,
    );
    await config.http.login(API_KEY);
  });

  afterAll(async () => {
    await publisher?.close();
    await instance?.kill();
    await redis?.close();
  });

  it.prop([fc.array(op, { minLength: 5, maxLength: 25 })], {
    numRuns: 40,
    ...(process.env.FC_SEED
      ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH, endOnFailure: true }
      : {}),
  })(
    "every tab delivers the user's events in order, once, and none missing",
    async (ops) => {
      const origin = new Origin(config);
      const published: number[] = [];
      const publish = async (count: number) => {
        for (let i = 0; i < count; i++) {
          const n = ++seq;
          await publisher.publish({ user: USER }, EVENT, { seq: n });
          published.push(n);
        }
      };
      const slot = (index: number) => origin.slots[index % Math.max(1, origin.slots.length)];
      try {
        origin.startHub();
        origin.slots.push({ store: memoryStore(), delivered: [], page: undefined });
        origin.open(origin.slots[0] as Slot);
        for (const step of ops) {
          switch (step.kind) {
            case "publish":
              await publish(step.count);
              break;
            case "open": {
              const fresh: Slot = { store: memoryStore(), delivered: [], page: undefined };
              origin.slots.push(fresh);
              origin.open(fresh);
              break;
            }
            case "reload": {
              const target = slot(step.slot);
              if (!target) break;
              origin.close(target);
              origin.open(target);
              break;
            }
            case "close": {
              const target = slot(step.slot);
              if (target?.page) origin.close(target);
              break;
            }
            case "replaceHub":
              origin.replaceHub();
              break;
            case "dropSocket":
              origin.dropSocket();
              break;
            case "pause":
              await new Promise((resume) => setTimeout(resume, step.ms));
              break;
          }
        }
        // Once every open tab is connected and welcomed (a tab's first connection starts where its
        // `welcome` says the stream stands, as a socket's own does), one more event: every tab must get it.
        const open = origin.slots.filter((s) => s.page !== undefined);
        const settle = (what: string, check: () => boolean) =>
          waitFor(what, check, { timeoutMs: SETTLE_MS }).catch((err: unknown) => {
            const tabs = open.map((s) => `${s.page?.state} [${s.delivered.join(",")}]`);
            throw new Error(
              `${String(err)}; published [${published.join(",")}]; ${origin.describe()}; tabs ${tabs.join(" | ")}`,
            );
          });
        await settle("every open tab connected and welcomed", () =>
          open.every((s) => s.page?.state === "connected" && s.page.lastOffset !== undefined),
        );
        await publish(1);
        const last = published.at(-1);
        await settle("every open tab at the last event", () => open.every((s) => s.delivered.at(-1) === last));
        // Every tab shows the connection's figures, the latest recovery included.
        await settle("every tab's stats() up to date", () =>
          open.every((s) => JSON.stringify(s.page?.stats().recoveries) === origin.recoveries()),
        );
        for (const s of origin.slots) {
          // In order and once: strictly increasing, across reloads.
          for (let i = 1; i < s.delivered.length; i++)
            expect(s.delivered[i], `tab delivered ${s.delivered.join(",")}`).toBeGreaterThan(s.delivered[i - 1] ?? 0);
          if (s.page === undefined || s.delivered.length === 0) continue;
          // None missing from the first it delivered on: the published run from there.
          const first = published.indexOf(s.delivered[0] ?? -1);
          expect(s.delivered).toEqual(published.slice(first));
        }
      } finally {
        origin.shutdown();
      }
    },
    120_000,
  );
});
