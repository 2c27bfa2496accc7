/**
 * A host app: its own users and routes, with Tether mounted beside them.
 * - login: the app's own check (`{ username, password }` against its user table);
 * - rooms with history: each user's teams;
 * - the app's own webhook publishes to a team room.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHttpServer, createTether, loadConfig, securityHeaders, type Tether } from "@tether/server";
import express from "express";

/** The app's users. A real app asks its database (and stores password hashes, never passwords). */
const USERS = new Map([
  ["alice", { password: "correct horse battery staple", teams: ["blue"] }],
  ["bob", { password: "hunter2 hunter2", teams: ["blue", "red"] }],
]);

export interface HostApp {
  readonly url: string;
  readonly tether: Tether;
  readonly http: Server;
  close(): Promise<void>;
}

/**
 * Starts the host app on `env.PORT` (0: any free port). Tether reads its settings from
 * `env` too: `REDIS_URL` for a fleet, none for embedded mode. `HOOK_SECRET` guards the
 * app's webhook.
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
