/**
 * A host app: its own users and routes, with Tether mounted beside them.
 * - login: the app's own check (`{ username, password }` against its user table), through
 *   Tether's login route (`client.login({ username, password })`, a Tether session cookie);
 * - or the app's own sign-in: `POST /app/login` gives a signed access token (a tiny JWT of
 *   its own), `GET /app/tether-token` mints Tether WS tokens for it (`tether.issueTokenFor`,
 *   the SDK's `getToken`), `POST /app/logout` ends it (`tether.endSession`). No Tether cookie;
 * - rooms with history: each user's teams;
 * - the app's own webhook publishes to a team room.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHttpServer, createTether, loadConfig, securityHeaders, type Tether, TetherError } from "@tether/server";
import express, { type RequestHandler } from "express";

/** The app's users. A real app asks its database (and stores password hashes, never passwords). */
const USERS = new Map([
  ["alice", { password: "correct horse battery staple", teams: ["blue"] }],
  ["bob", { password: "hunter2 hunter2", teams: ["blue", "red"] }],
]);

/** How long the app's own access tokens live: the Tether session of one ends with it. */
const ACCESS_TOKEN_TTL_MS = 60 * 60 * 1000;

/** Who an access token says is signed in, and which of their sign-ins it is. */
interface AccessClaims {
  userId: string;
  /** One per sign-in: Tether's session key for it (`tether.endSession` ends that sign-in only). */
  sessionId: string;
  expiresAt: number;
}

/**
 * The app's own stateless access tokens: claims + HMAC, like a JWT (a real app would use a
 * JWT library). Every instance verifies them with the shared secret, no store involved.
 */
function accessTokens(secret: string) {
  const sign = (payload: string) => createHmac("sha256", secret).update(payload).digest("base64url");
  return {
    issue(claims: AccessClaims): string {
      const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
      return `${payload}.${sign(payload)}`;
    },
    verify(token: string): AccessClaims | undefined {
      const [payload = "", mac = ""] = token.split(".");
      const expected = Buffer.from(sign(payload));
      const given = Buffer.from(mac);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as AccessClaims;
      return claims.expiresAt > Date.now() ? claims : undefined;
    },
  };
}

export interface HostApp {
  readonly url: string;
  readonly tether: Tether;
  readonly http: Server;
  close(): Promise<void>;
}

/**
 * Starts the host app on `env.PORT` (0: any free port). Tether reads its settings from
 * `env` too: `REDIS_URL` for a fleet, none for embedded mode. `HOOK_SECRET` guards the
 * app's webhook; `APP_SECRET` signs the app's own access tokens (give every instance the
 * same one; generated when unset, for one instance).
 */
export async function startHostApp(env: Record<string, string | undefined> = process.env): Promise<HostApp> {
  const config = loadConfig(env);
  const tether = await createTether({
    config,
    // The app's own login check: Tether parsed the JSON body. Naming the account lets Tether
    // throttle failed logins per account as well as per address.
    login: (req) => {
      const { username, password } = (req.body ?? {}) as { username?: unknown; password?: unknown };
      if (typeof username !== "string") return null; // 401
      const account = username.toLowerCase();
      const user = USERS.get(account);
      return user && user.password === password ? { userId: account, account } : { refused: true, account };
    },
    // Rooms with history: a user's sockets join their teams' rooms at connect.
    roomsOf: ({ userId }) => (USERS.get(userId)?.teams ?? []).map((team) => `team:${team}`),
  });

  const app = express();
  app.disable("x-powered-by");
  app.use(securityHeaders());
  app.use(tether.authRouter); // POST /api/auth/login, /logout, /ws-token; GET /api/auth/session
  app.use(tether.opsRouter); // /healthz, /readyz, /metrics (mount it on an internal port in production)

  // The app's own sign-in, with no Tether cookie: its access token is a bearer header, which a
  // foreign page cannot make the browser send (no CSRF). An app that uses a cookie of its own
  // instead must protect /app/tether-token against CSRF like its other routes.
  const tokens = accessTokens(env.APP_SECRET ?? randomBytes(32).toString("base64url"));
  const signedIn: RequestHandler = (req, res, next) => {
    const header = req.get("authorization") ?? "";
    const claims = header.startsWith("Bearer ") ? tokens.verify(header.slice("Bearer ".length)) : undefined;
    if (!claims) return void res.status(401).json({ error: { code: "SESSION_REQUIRED", message: "Sign in." } });
    res.locals.claims = claims;
    next();
  };
  app.post("/app/login", express.json({ limit: "1kb" }), (req, res) => {
    const { username, password } = (req.body ?? {}) as { username?: unknown; password?: unknown };
    const account = typeof username === "string" ? username.toLowerCase() : "";
    if (USERS.get(account)?.password !== password) return void res.status(401).json({ error: "wrong password" });
    const claims = {
      userId: account,
      sessionId: randomBytes(16).toString("base64url"),
      expiresAt: Date.now() + ACCESS_TOKEN_TTL_MS,
    };
    res.json({ accessToken: tokens.issue(claims), expiresAt: claims.expiresAt });
  });
  // The SDK's getToken calls this before every connect without a resume ticket.
  app.get("/app/tether-token", signedIn, async (req, res) => {
    const { userId, sessionId, expiresAt } = res.locals.claims as AccessClaims;
    res.set("Cache-Control", "no-store");
    try {
      res.json(await tether.issueTokenFor(req, { userId, sessionKey: sessionId, expiresAt }));
    } catch (err) {
      // SESSION_REQUIRED (signed out), RATE_LIMITED, UNAVAILABLE…: Tether's status and body.
      if (!(err instanceof TetherError)) throw err;
      if (err.retryAfterSeconds !== undefined) res.set("Retry-After", String(err.retryAfterSeconds));
      res.status(err.status).json(err.toBody());
    }
  });
  // A stateless token cannot be taken back, but its Tether session can: its sockets get
  // session:ended on every instance, and no WS token is minted for it again.
  app.post("/app/logout", signedIn, async (_req, res) => {
    await tether.endSession((res.locals.claims as AccessClaims).sessionId);
    res.status(204).end();
  });

  // The app's own routes, untouched by Tether.
  app.get("/api/hello", (_req, res) => {
    res.json({ hello: "from the host app" });
  });
  app.post("/hooks/deploy", express.json(), async (req, res) => {
    if (!env.HOOK_SECRET || req.get("x-hook-secret") !== env.HOOK_SECRET) {
      res.status(401).json({ error: "bad hook secret" });
      return;
    }
    const { team, version } = req.body as { team?: unknown; version?: unknown };
    if (typeof team !== "string" || typeof version !== "string") {
      res.status(400).json({ error: "expected {team, version}" });
      return;
    }
    const offset = await tether.publisher.publish({ room: `team:${team}` }, "deploy:finished", { version });
    res.status(202).json({ offset });
  });

  // Tether's timeouts and connection cap on the app's HTTP server, then Socket.IO on it.
  const http = createHttpServer(config.http, app);
  tether.attach(http);
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(config.port, config.host, () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tether,
    http,
    // Graceful stop: clients are moved to other instances over the drain window, then Socket.IO,
    // the store connections and the HTTP server close.
    close: async () => {
      await tether.drain(config.drainWindowMs);
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      await tether.close();
      http.closeIdleConnections();
      await closed;
    },
  };
}
