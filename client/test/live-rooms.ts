/**
 * The client's live suites' server: one instance of the rooms host (the API key plus a user
 * name, and a `canJoin` read from a JSON policy file the test rewrites at will) on a real
 * Redis, behind a proxy that can cut or refuse every connection. `liveRooms()` registers the
 * suite's hooks (start once, close every client after each test, stop at the end).
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startClient, type TestClient } from "@tether/testkit/client";
import { post } from "@tether/testkit/http";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startProxy, type TestProxy } from "@tether/testkit/proxy";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { afterAll, afterEach, beforeAll } from "vitest";
import type { TetherClient, TetherEvents } from "../src/index.js";

const HOST = resolve(import.meta.dirname, "../../server/test/rooms/host.ts");
const API_KEY = "client-live-rooms-api-key-0123456";
const PUBLISH_KEY = "client-live-rooms-publish-key-0123";

/** Who may join which rooms (`*`: any), by user name. */
export type RoomsPolicy = Record<string, string[]>;

export interface LiveRooms {
  readonly instance: TestInstance;
  readonly proxy: TestProxy;
  /** Replaces the policy; the host reads it at every check. */
  setPolicy(policy: RoomsPolicy): void;
  /** A client logged in as `name` (not connected), through the proxy unless `url` says otherwise. */
  user<E extends TetherEvents>(name: string, url?: string): Promise<TetherClient<E>>;
  /** `POST /api/publish` of `data` to `target` (202, or it throws); `{ ephemeral: true }` sends an ephemeral one. */
  publish(
    target: { user: string } | { room: string },
    event: string,
    data: object,
    options?: { ephemeral?: boolean },
  ): Promise<void>;
}

export function liveRooms(policy: RoomsPolicy): LiveRooms {
  let redis: TestRedis;
  let instance: TestInstance;
  let proxy: TestProxy;
  const opened: TestClient[] = [];
  const policyFile = join(tmpdir(), `tether-client-live-rooms-${process.pid}-${Math.random()}.json`);
  const setPolicy = (next: RoomsPolicy) => writeFileSync(policyFile, JSON.stringify(next));

  beforeAll(async () => {
    setPolicy(policy);
    redis = await startRedis();
    instance = await startInstance(
      { REDIS_URL: redis.url, TETHER_API_KEY: API_KEY, TETHER_PUBLISH_KEY: PUBLISH_KEY, ROOMS_POLICY: policyFile },
      { main: HOST },
    );
    proxy = await startProxy([instance.port]);
  });
  afterEach(() => {
    for (const t of opened.splice(0)) t.client.close();
  });
  afterAll(async () => {
    await proxy?.close();
    await instance?.kill();
    await redis?.close();
  });

  return {
    get instance() {
      return instance;
    },
    get proxy() {
      return proxy;
    },
    setPolicy,
    async user<E extends TetherEvents>(name: string, url = proxy.url): Promise<TetherClient<E>> {
      const t = startClient(url);
      opened.push(t);
      const res = await t.post("/api/auth/login", { apiKey: API_KEY, user: name });
      if (res.status !== 200) throw new Error(`login as ${name}: ${res.status}`);
      return t.client as unknown as TetherClient<E>;
    },
    async publish(target, event, data, options = {}) {
      const res = await post(
        `${instance.url}/api/publish`,
        { target, event, data, ...options },
        { authorization: `Bearer ${PUBLISH_KEY}` },
      );
      if (res.status !== 202) throw new Error(`publish: ${res.status}`);
    },
  };
}
