/**
 * The chaos suite's actors: raw Socket.IO clients that record every packet they
 * get (no SDK, no duplicate filter), and a publisher that publishes each
 * stream's events one after the other, retries each call under its own id,
 * and records every call's outcome.
 */
import { io, type Socket } from "socket.io-client";
import type { ClientEvent, ClientRecord, PublishRecord } from "./checker.js";
import { API_KEY, PUBLISH_KEY } from "./topology.js";

let origin = performance.now();
/** The recorder's clock (ms since the run started): every actor lives in this process. */
export const now = () => performance.now() - origin;
export function resetClock(): void {
  origin = performance.now();
}

export const userStreamOf = (user: string) => `user:${user}`;
export const roomStreamOf = (room: string) => `room:${room}`;

/** Logs a user in once (one session per simulated user); returns the session cookie. */
export async function loginAs(baseUrl: string, user: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${baseUrl}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ apiKey: API_KEY, user }),
      signal: AbortSignal.timeout(5_000),
    }).catch(() => undefined);
    if (res?.status === 200) return (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    if (attempt >= 20) throw new Error(`login as ${user} failed: ${res?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export interface RecordingClient {
  readonly record: ClientRecord;
  readonly connected: boolean;
  /** The highest seq received per stream. */
  readonly lastSeq: Map<string, number>;
  /** Per stream, the time of the last recovered:false. */
  readonly lastNotRecovered: Map<string, number>;
  /** The instance (TETHER_INSTANCE_ID) of the current connection, if connected. */
  readonly instance: string | undefined;
  /** The run's end is judged now (every client settled, or the wait for it ran out): notes whether it is connected. */
  judgeEnd(): void;
  /** Stops it (the connection it had when the end was judged is what counts). */
  close(): void;
}

const RECONNECT_BASE_MS = 100;
const RECONNECT_MAX_MS = 1_500;

/**
 * One browser tab: socket.io-client with an `auth` callback that fetches a
 * fresh token (cookie session) and sends the last offset it saw per stream,
 * reconnecting with backoff after anything retryable, as the SDK would.
 */
export function startRecordingClient(options: {
  id: string;
  baseUrl: string;
  user: string;
  rooms: string[];
  cookie: string;
}): RecordingClient {
  const { baseUrl, user, cookie } = options;
  const userStream = userStreamOf(user);
  const events: ClientEvent[] = [];
  const record: ClientRecord = {
    id: options.id,
    streams: [userStream, ...options.rooms.map(roomStreamOf)],
    sessionValid: true,
    events,
    connectedAtEnd: false,
  };
  const push = (event: ClientEvent) => events.push(event);
  /** The last offset seen per stream: what a reconnect asks to resume from. */
  const offsets = new Map<string, string>();
  /** Offsets the current connection's welcome announced, per stream. */
  let welcomeOffsets = new Map<string, string>();
  const lastSeq = new Map<string, number>();
  const lastNotRecovered = new Map<string, number>();
  let stopped = false;
  let failures = 0;
  let instance: string | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const stop = () => {
    stopped = true;
    clearTimeout(retry);
    socket.close();
  };

  const fetchToken = async (): Promise<string | undefined> => {
    const res = await fetch(`${baseUrl}/api/auth/ws-token`, {
      method: "POST",
      headers: { cookie },
      signal: AbortSignal.timeout(2_000),
    }).catch(() => undefined);
    if (!res) return undefined;
    const body = (await res.json().catch(() => ({}))) as { token?: string; error?: { code?: string } };
    if (res.status === 401) {
      push({ t: now(), kind: "token_refused", status: res.status, code: body.error?.code ?? "" });
      stop();
    }
    return res.status === 200 ? body.token : undefined;
  };

  const socket: Socket = io(baseUrl, {
    transports: ["websocket"],
    forceNew: true,
    reconnectionDelay: RECONNECT_BASE_MS,
    reconnectionDelayMax: RECONNECT_MAX_MS,
    timeout: 3_000,
    auth: (send: (auth: object) => void) => {
      void fetchToken().then((token) => {
        const rooms: Record<string, string> = {};
        for (const room of options.rooms) {
          const offset = offsets.get(roomStreamOf(room));
          if (offset !== undefined) rooms[room] = offset;
        }
        // Without a token the server refuses with a retryable TOKEN_INVALID: the backoff below retries.
        send({ token: token ?? "", offset: offsets.get(userStream), rooms });
      });
    },
  });

  /** After a refusal or a server-side disconnect socket.io-client stays down: retry as the SDK does. */
  const reconnectLater = () => {
    if (stopped || socket.active) return;
    failures++;
    const delay = Math.min(RECONNECT_BASE_MS * 2 ** failures, RECONNECT_MAX_MS) * (0.5 + Math.random());
    clearTimeout(retry);
    retry = setTimeout(() => {
      if (!stopped && !socket.connected) socket.connect();
    }, delay);
  };

  socket.on("connect", () => {
    failures = 0;
    push({ t: now(), kind: "connect" });
  });
  socket.on("disconnect", (reason) => {
    instance = undefined;
    push({ t: now(), kind: "disconnect", reason });
    reconnectLater();
  });
  socket.on("connect_error", (err: Error & { data?: { code?: string; retryable?: boolean } }) => {
    push({ t: now(), kind: "connect_error", code: err.data?.code ?? err.message, retryable: err.data?.retryable });
    if (err.data?.retryable === false) return stop();
    reconnectLater();
  });
  socket.onAny((name: string, payload: Record<string, unknown> = {}) => {
    const t = now();
    if (name === "welcome") {
      const rooms = (payload.rooms ?? {}) as Record<string, string>;
      welcomeOffsets = new Map([
        [userStream, String(payload.offset)],
        ...Object.entries(rooms).map(([room, offset]) => [roomStreamOf(room), offset] as [string, string]),
      ]);
      instance = String(payload.instance);
      push({ t, kind: "welcome", instance, streams: [...welcomeOffsets.keys()] });
      // A stream this client has no offset for starts where the server says it stands.
      for (const [stream, offset] of welcomeOffsets) if (!offsets.has(stream)) offsets.set(stream, offset);
    } else if (name === "recovery") {
      const stream = typeof payload.room === "string" ? roomStreamOf(payload.room) : userStream;
      const recovered = payload.recovered === true;
      push({ t, kind: "recovery", stream, recovered, missed: Number(payload.missed) });
      if (!recovered) {
        // Refetch, and resume from where this connection started on the stream.
        lastNotRecovered.set(stream, t);
        const offset = welcomeOffsets.get(stream);
        if (offset !== undefined) offsets.set(stream, offset);
      }
    } else if (name === "session:ended") {
      push({ t, kind: "session_ended", reason: String(payload.reason) });
      stop();
    } else if (name === "chaos") {
      // The wire says which stream's offset this is (a room event carries `room`); the data says
      // which stream the publisher sent it to, which is what the checker judges.
      const wireStream = typeof payload.room === "string" ? roomStreamOf(payload.room) : userStream;
      const offset = String(payload.offset);
      const stream = String(payload.cs);
      const seq = Number(payload.seq);
      const cid = typeof payload.cid === "string" ? payload.cid : undefined;
      push({ t, kind: "event", stream, seq, offset, ...(cid === undefined ? {} : { cid }) });
      offsets.set(wireStream, offset);
      if (seq > (lastSeq.get(stream) ?? 0)) lastSeq.set(stream, seq);
    }
  });

  return {
    record,
    get connected() {
      return socket.connected;
    },
    lastSeq,
    lastNotRecovered,
    get instance() {
      return instance;
    },
    judgeEnd() {
      record.connectedAtEnd = socket.connected;
    },
    close() {
      stop();
    },
  };
}

/** Where a stream's publishes go: `{user}` or `{room}`. */
function targetOf(stream: string): { user: string } | { room: string } {
  return stream.startsWith("room:") ? { room: stream.slice(5) } : { user: stream.slice(5) };
}

/** HTTP answers that say the call itself is wrong: retrying it cannot help (a bug in the suite). */
const FINAL_STATUSES = new Set([400, 401, 403, 404, 413]);
const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 1_000;
/** One attempt's bound: longer than the server's Redis command timeout, so an attempt normally gets its answer. */
const ATTEMPT_TIMEOUT_MS = 8_000;

/**
 * Publishes to one stream, one call at a time: call n+1 is sent only after
 * call n was acknowledged or given up, always through the same instance until
 * that instance refuses connections (so an unanswered attempt cannot overtake
 * a later call on another connection). Each call has a unique id, sent as the
 * `Idempotency-Key` and in the data (`cid`); a rejected or unanswered attempt
 * is retried under the same id until the call's deadline, then the call is
 * recorded as failed. Where the server does not deduplicate by that key, a
 * retried write that had landed shows up as a duplicate: that is the point.
 */
export class StreamPublisher {
  private seq = 0;
  private home: number;
  private running = true;
  private quietUntil = 0;

  constructor(
    readonly stream: string,
    private readonly instanceUrls: () => string[],
    private readonly records: PublishRecord[],
    start: number,
    /** Per call: how long it is retried before it is given up (ms). */
    private readonly callDeadlineMs: number,
    /** Makes call ids unique across runs (Redis keeps nothing between runs, but a reader of logs may). */
    private readonly runTag: string,
  ) {
    this.home = start;
  }

  get published(): number {
    return this.seq;
  }

  async publishOne(padBytes: number): Promise<void> {
    const seq = ++this.seq;
    const callId = `${this.runTag}:${this.stream}:${seq}`;
    const startedAt = now();
    const deadline = startedAt + this.callDeadlineMs;
    const record: PublishRecord = {
      stream: this.stream,
      seq,
      callId,
      startedAt,
      endedAt: startedAt,
      attempts: 0,
      acked: false,
      failed: false,
    };
    this.records.push(record);
    const body = JSON.stringify({
      target: targetOf(this.stream),
      event: "chaos",
      data: { cs: this.stream, seq, cid: callId, pad: "x".repeat(padBytes) },
    });
    for (;;) {
      record.attempts++;
      const urls = this.instanceUrls();
      const url = urls[this.home % urls.length];
      let final = false;
      try {
        const res = await fetch(`${url}/api/publish`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${PUBLISH_KEY}`,
            "idempotency-key": callId,
          },
          body,
          signal: AbortSignal.timeout(Math.max(1_000, Math.min(ATTEMPT_TIMEOUT_MS, deadline - now()))),
        });
        const answer = (await res.json().catch(() => ({}))) as { offset?: string; error?: { code?: string } };
        record.endedAt = now();
        if (res.status === 202 && typeof answer.offset === "string") {
          record.acked = true;
          record.offset = answer.offset;
          // record.error stays: why the attempt before the acked one failed (what the retry was for).
          return;
        }
        record.error = `${res.status} ${answer.error?.code ?? ""}`.trim();
        final = FINAL_STATUSES.has(res.status);
      } catch (err) {
        record.endedAt = now();
        const cause = (err as { cause?: { code?: string } }).cause?.code;
        record.error = cause ?? (err as Error).name;
        // A refused connection or an attempt with no answer in time (a frozen instance) moves on to
        // the next instance, as a load balancer's retry would. An attempt that timed out may still
        // land: the retry carries the same Idempotency-Key, so that is safe on any instance.
        if (cause === "ECONNREFUSED" || (err as Error).name === "TimeoutError") this.home++;
      }
      const backoff = Math.min(RETRY_BASE_MS * 2 ** (record.attempts - 1), RETRY_MAX_MS);
      if (final || now() + backoff >= deadline) {
        record.failed = true;
        return;
      }
      await sleep(backoff);
    }
  }

  /**
   * Publishes every `intervalMs` until stopped, except while quiet. The gap a
   * quiet period leaves is what the checker judges the last event by.
   */
  async run(intervalMs: number, padBytes: number): Promise<void> {
    while (this.running) {
      const quiet = this.quietUntil - now();
      if (quiet > 0) await sleep(Math.min(quiet, 500));
      else {
        await this.publishOne(padBytes);
        await sleep(intervalMs);
      }
    }
  }

  get isQuiet(): boolean {
    return now() < this.quietUntil;
  }

  /** No publishes on this stream for `ms` from now (a call under way still completes). */
  quiet(ms: number): void {
    this.quietUntil = Math.max(this.quietUntil, now() + ms);
  }

  stop(): void {
    this.running = false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
