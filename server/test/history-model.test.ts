import { fc, it } from "@fast-check/vitest";
import { compareIds, formatOffset, parseOffset, ZERO_ID } from "@tether/shared";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { unrecoverable } from "../src/realtime/recovery.js";
import { MemoryHistoryStore } from "../src/store/history-memory.js";
import { RedisHistoryStore } from "../src/store/history-redis.js";
import type { HistoryLimits, HistoryStore } from "../src/store/types.js";

/**
 * Model-based check of the history stores: random interleavings of appends,
 * publishes under an idempotency id (retries of the same id, with the same or
 * another body), reads from any offset a client could hold, time passing
 * (within and past the window), length-cap trims, key expiry and (on Redis)
 * data loss, judged
 * against one small reference model. Both stores must agree with the model on
 * every run. Time is a stepped clock passed to the stores (tests only).
 * A failure prints fast-check's seed and path; FC_SEED=<seed> replays it.
 */

const LIMITS: HistoryLimits = { windowMs: 1_000, maxLength: 4, lastIdTtlMs: 24 * 3600_000 };
const STREAMS = 2;

interface ModelEvent {
  id: string;
  /** The store's epoch when it was appended. */
  epoch: string;
  at: number;
}

/** What a stream remembers of a publish id: its first event and body. */
interface ModelPublish {
  event: ModelEvent;
  body: string;
}

/** The reference: what a client at an offset can get back, by the contract's rules alone. */
class Model {
  now = Date.now();
  /** Per stream: every event of the current epoch (the store's "segment" since it last lost data). */
  readonly segments: ModelEvent[][] = Array.from({ length: STREAMS }, () => []);
  /** Per stream: events since the stream last emptied (idle past the window): the length cap counts these. */
  readonly alive: ModelEvent[][] = Array.from({ length: STREAMS }, () => []);
  /** Every offset ever handed out, as a client would hold it. */
  readonly offsets: string[] = [ZERO_ID];
  /** Per stream: publish id → its first publish. */
  readonly publishes: Map<string, ModelPublish>[] = Array.from({ length: STREAMS }, () => new Map());

  /** The first publish under `key`, while remembered: for the window, in the epoch it was appended in. */
  remembered(s: number, key: string): ModelPublish | undefined {
    const first = this.publishes[s]?.get(key);
    const epoch = this.segments[s]?.[0]?.epoch;
    if (!first || this.now - first.event.at > LIMITS.windowMs || first.event.epoch !== epoch) return undefined;
    return first;
  }

  /** An appended event: the stream's newest, counted by the length cap, an offset a client can hold. */
  appended(s: number, id: string, epoch: string): ModelEvent {
    const segment = this.segments[s]!;
    const previous = segment.at(-1);
    if (previous) {
      expect(epoch).toBe(previous.epoch);
      expect(compareIds(id, previous.id)).toBeGreaterThan(0);
    }
    const event = { id, epoch, at: this.now };
    segment.push(event);
    this.alive[s]!.push(event);
    this.offsets.push(formatOffset(id, epoch));
    return event;
  }

  retained(s: number): ModelEvent[] {
    const alive = this.alive[s] ?? [];
    const last = alive.at(-1);
    if (!last || this.now - last.at > LIMITS.windowMs) return [];
    return alive.slice(-LIMITS.maxLength).filter((event) => event.at >= this.now - LIMITS.windowMs);
  }

  expireIdle(s: number): void {
    const last = this.alive[s]?.at(-1);
    if (last && this.now - last.at > LIMITS.windowMs) this.alive[s] = [];
  }

  /** Whether everything after `offset` can be replayed, and what. */
  expected(s: number, offset: string): { recoverable: boolean; after: string[] } {
    const segment = this.segments[s] ?? [];
    const pos = parseOffset(offset);
    const epoch = segment[0]?.epoch ?? "";
    if (!pos || (pos.id !== ZERO_ID && pos.epoch !== epoch)) return { recoverable: false, after: [] };
    const last = segment.at(-1)?.id ?? ZERO_ID;
    if (compareIds(pos.id, last) > 0) return { recoverable: false, after: [] };
    const missing = segment.filter((event) => compareIds(event.id, pos.id) > 0);
    const retained = new Set(this.retained(s).map((event) => event.id));
    return { recoverable: missing.every((event) => retained.has(event.id)), after: missing.map((event) => event.id) };
  }
}

interface Real {
  store: HistoryStore;
  stream(s: number): string;
  /** Redis only: what a key's TTL does (the stream key goes), and what data loss does (both keys go). */
  expireKey?(s: number): Promise<void>;
  lose?(s: number): Promise<void>;
}

type Command = fc.AsyncCommand<Model, Real>;

class Append implements Command {
  constructor(readonly s: number) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    model.expireIdle(this.s);
    const { id, epoch } = await real.store.append(real.stream(this.s), "e", "{}");
    model.appended(this.s, id, epoch);
  }
  toString = () => `append(${this.s})`;
}

/**
 * A publish under an id, often a retry of an earlier one: while the id is
 * remembered, the same body answers the first offset and appends nothing, and
 * another body is refused; once forgotten, it appends anew.
 */
class Publish implements Command {
  constructor(
    readonly s: number,
    readonly key: string,
    /** "{}" or "[]" (another body of the same size, as reads count bytes): a reused id with different data. */
    readonly data: string,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    model.expireIdle(this.s);
    const first = model.remembered(this.s, this.key);
    const before = model.segments[this.s]!.at(-1)?.id ?? ZERO_ID;
    const result = await real.store.append(real.stream(this.s), "e", this.data, { id: this.key });
    if (first) {
      expect({ id: result.id, epoch: result.epoch }).toEqual({ id: first.event.id, epoch: first.event.epoch });
      expect(result.status).toBe(first.body === this.data ? "duplicate" : "conflict");
      // Nothing appended: the stream's head has not moved.
      expect((await real.store.head(real.stream(this.s))).last).toBe(before);
      return;
    }
    expect(result.status).toBe("appended");
    const event = model.appended(this.s, result.id, result.epoch);
    model.publishes[this.s]!.set(this.key, { event, body: this.data });
  }
  toString = () => `publish(${this.s}, ${this.key}, ${this.data})`;
}

class Read implements Command {
  constructor(
    readonly s: number,
    readonly pick: number,
    readonly count: number,
    /** A page's byte cap (0: none); every entry here is 3 bytes ("e" and "{}"). */
    readonly maxBytes: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const offset = model.offsets[this.pick % model.offsets.length]!;
    const pos = parseOffset(offset)!;
    const read = await real.store.readAfter(real.stream(this.s), pos.id, this.count, this.maxBytes);
    const page = Math.min(this.count, this.maxBytes > 0 ? Math.max(1, Math.floor(this.maxBytes / 3)) : this.count);
    const expected = model.expected(this.s, offset);
    const lost = unrecoverable(pos, read);
    expect({ offset, recoverable: lost === undefined }).toEqual({ offset, recoverable: expected.recoverable });
    if (expected.recoverable) expect(read.entries.map((e) => e.id)).toEqual(expected.after.slice(0, page));
    expect(read.last).toBe(model.segments[this.s]!.at(-1)?.id ?? ZERO_ID);
  }
  toString = () => `read(${this.s}, offset#${this.pick}, ${this.count}, ${this.maxBytes} bytes)`;
}

/** History on demand: the newest retained events before an offset a client holds (or the newest), oldest first. */
class ReadBack implements Command {
  constructor(
    readonly s: number,
    /** -1: from the newest. */
    readonly pick: number,
    readonly count: number,
    /** A page's byte cap (0: none); every entry here is 3 bytes. */
    readonly maxBytes: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const before = this.pick < 0 ? undefined : parseOffset(model.offsets[this.pick % model.offsets.length]!)!.id;
    const read = await real.store.readBefore(real.stream(this.s), before, this.count, this.maxBytes);
    const page = Math.min(this.count, this.maxBytes > 0 ? Math.max(1, Math.floor(this.maxBytes / 3)) : this.count);
    model.expireIdle(this.s);
    const older = model
      .retained(this.s)
      .map((event) => event.id)
      .filter((id) => before === undefined || compareIds(id, before) < 0);
    const expected = page === 0 ? [] : older.slice(-page);
    expect(read.entries.map((e) => e.id)).toEqual(expected);
    expect(read.more).toBe(older.length > expected.length);
    expect(read.last).toBe(model.segments[this.s]!.at(-1)?.id ?? ZERO_ID);
  }
  toString = () => `read-back(${this.s}, offset#${this.pick}, ${this.count}, ${this.maxBytes} bytes)`;
}

class Advance implements Command {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(model: Model): Promise<void> {
    model.now += this.ms;
  }
  toString = () => `advance(${this.ms})`;
}

class ExpireKey implements Command {
  constructor(readonly s: number) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    model.now += LIMITS.windowMs + 1;
    model.expireIdle(this.s);
    await real.expireKey?.(this.s);
  }
  toString = () => `expire-key(${this.s})`;
}

class Lose implements Command {
  constructor(readonly s: number) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    await real.lose?.(this.s);
    model.segments[this.s] = [];
    model.alive[this.s] = [];
  }
  toString = () => `lose(${this.s})`;
}

const stream = fc.integer({ min: 0, max: STREAMS - 1 });
/** Few ids and mostly the same body: retries are the common case. */
const publish = fc
  .tuple(stream, fc.constantFrom("k0", "k1", "k2"), fc.constantFrom("{}", "{}", "{}", "[]"))
  .map(([s, key, data]) => new Publish(s, key, data));
const commands = (withDataLoss: boolean) =>
  fc.commands(
    [
      stream.map((s) => new Append(s)),
      stream.map((s) => new Append(s)),
      publish,
      publish,
      fc
        .tuple(stream, fc.nat(), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 12 }))
        .map(([s, pick, count, bytes]) => new Read(s, pick, count, bytes)),
      fc
        .tuple(stream, fc.nat(), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 12 }))
        .map(([s, pick, count, bytes]) => new Read(s, pick, count, bytes)),
      fc
        .tuple(
          stream,
          fc.integer({ min: -1, max: 1_000 }),
          fc.integer({ min: 1, max: 6 }),
          fc.integer({ min: 0, max: 12 }),
        )
        .map(([s, pick, count, bytes]) => new ReadBack(s, pick, count, bytes)),
      fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constant(LIMITS.windowMs)).map((ms) => new Advance(ms)),
      stream.map((s) => new ExpireKey(s)),
      ...(withDataLoss ? [stream.map((s) => new Lose(s))] : []),
    ],
    { maxCommands: 60 },
  );

const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const params = { numRuns: 300, ...(seed === undefined ? {} : { seed }) };

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis?.close());

let runs = 0;
describe("history stores against the model", () => {
  it.prop([commands(true)], params)("Redis Streams store", async (cmds) => {
    const model = new Model();
    const prefix = `model-${++runs}-${Math.random().toString(36).slice(2)}`;
    const name = (s: number) => `user:${prefix}-${s}`;
    const client = redis.client();
    const real: Real = {
      store: new RedisHistoryStore(client, client, LIMITS, () => model.now),
      stream: name,
      expireKey: async (s) => void (await client.del(`tether:stream:{${name(s)}}`)),
      lose: async (s) => void (await client.del(`tether:stream:{${name(s)}}`, `tether:stream-meta:{${name(s)}}`)),
    };
    await fc.asyncModelRun(() => ({ model, real }), cmds);
  });

  it.prop([commands(false)], params)("in-process twin", async (cmds) => {
    const model = new Model();
    const real: Real = { store: new MemoryHistoryStore(LIMITS, () => model.now), stream: (s) => `user:${s}` };
    await fc.asyncModelRun(() => ({ model, real }), cmds);
  });
});
