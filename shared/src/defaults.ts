/**
 * Named defaults with their units. The server reads overrides from its config;
 * the client SDK takes overrides as options.
 */
export const DEFAULTS = {
  port: 3000,
  host: "0.0.0.0",
  sessionIdleTtlMs: 7 * 24 * 60 * 60 * 1000,
  sessionMaxAgeMs: 30 * 24 * 60 * 60 * 1000,
  wsTokenTtlMs: 60_000,
  pingIntervalMs: 25_000,
  pingTimeoutMs: 20_000,
  recoveryWindowMs: 10 * 60 * 1000,
  /** Most events kept per user or room stream for replay. */
  recoveryMaxEvents: 1_000,
  /** Admission control: handshakes per second one instance takes before it turns more away (above what one core serves: the event-loop delay usually speaks first). */
  admissionHandshakesPerSecond: 1_000,
  /** Admission control: event-loop delay (p99 over a second) past which handshakes are turned away. */
  admissionMaxEventLoopDelayMs: 250,
  /** Life of a resume ticket (0 turns them off); a new one is pushed every half of it. */
  resumeTicketTtlMs: 5 * 60 * 1000,
  /**
   * How often a delivery probe goes through each subscriber connection (per shard on a Cluster): one
   * that stopped delivering is reconnected and every stream re-read (a lost last event arrives within two).
   */
  streamCheckIntervalMs: 5_000,
  /** Longest wait for one Redis command before the request fails with UNAVAILABLE. */
  redisCommandTimeoutMs: 2_000,
  /**
   * How often an instance checks that Redis still holds the generated API key and session secret: after
   * Redis lost them, every instance agrees again within this (two small commands per instance per round).
   */
  secretsCheckIntervalMs: 2_000,
  /** Largest accepted JSON body and Socket.IO message. */
  maxBodyBytes: 16 * 1024,
  maxSocketMessageBytes: 64 * 1024,
  /** Events one socket may send per second before it is throttled. */
  socketEventsPerSecond: 50,
  /** Events one login session may send per second across its sockets on one instance (tabs together). */
  sessionEventsPerSecond: 100,
  /** Rooms with history one socket may be in (granted by `roomsOf` or joined at run time). */
  maxRoomsPerSocket: 100,
  /** Sockets one login session may hold on one instance (tabs × reconnect overlap). */
  maxSocketsPerSession: 32,
  /** On shutdown, clients are moved to other instances over this long (in jittered batches). */
  drainWindowMs: 5_000,
  /** On shutdown, the process exits by this deadline. */
  shutdownTimeoutMs: 30_000,
  /**
   * HTTP server limits (see deploy/haproxy.cfg for the proxy's side). A client gets this long to
   * send its request headers, and the whole request; an idle keep-alive connection is closed after
   * `httpKeepAliveTimeoutMs`. Upgraded WebSockets are not HTTP requests any more: none applies.
   */
  httpHeadersTimeoutMs: 10_000,
  httpRequestTimeoutMs: 30_000,
  httpKeepAliveTimeoutMs: 15_000,
  /** How often the HTTP server looks for connections past those timeouts (Node's default is 30 s). */
  httpTimeoutCheckIntervalMs: 1_000,
  /** Open connections (WebSockets included) one instance accepts; more are closed at once. */
  httpMaxConnections: 10_000,
  /** The demo's `POST /api/jobs`: jobs one user may run at once on one instance, and their steps together. */
  jobsPerUser: 3,
  jobStepsPerUser: 10_000,
} as const;

export const CLIENT_DEFAULTS = {
  /** First reconnect delay; doubles on each failure up to the cap. */
  reconnectBaseDelayMs: 500,
  reconnectMaxDelayMs: 30_000,
  /** Give up a token request after this long and retry (never log out). */
  tokenRequestTimeoutMs: 10_000,
} as const;

/**
 * The longest time away a handshake's `auth.awayMs` is taken at: longer reports
 * count as this long (a client's clock jump or a tab asleep for days must not
 * skew the server's time-to-reconnect figures).
 */
export const MAX_REPORTED_AWAY_MS = 24 * 60 * 60 * 1000;

/** Length of a WS token: 32 random bytes in base64url. */
export const WS_TOKEN_LENGTH = 43;
/** A WS token as the handshake accepts it: {@link WS_TOKEN_LENGTH} base64url characters. */
export const WS_TOKEN_PATTERN = new RegExp(`^[A-Za-z0-9_-]{${WS_TOKEN_LENGTH}}$`);
