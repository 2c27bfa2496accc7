/**
 * The baseline: the straightforward design with plain Socket.IO 4.8, in its own
 * process. express-session over connect-redis (as Tether's sessions), a login
 * route that puts the user in the session, the session cookie checked on the
 * WebSocket upgrade (Socket.IO's express-session recipe: `io.engine.use`), a
 * room per user, and @socket.io/redis-adapter across instances. No rate limits,
 * no history. Like Tether it sends `welcome` on connect.
 *
 * @example
 * node --import tsx bench/plain-server.ts '{"port":4000,"redisUrl":"redis://…","instance":"p1","secret":"…"}'
 */
import { createServer, type IncomingMessage } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { RedisStore } from "connect-redis";
import express from "express";
import session from "express-session";
import { Redis } from "ioredis";
import { Server } from "socket.io";

interface PlainOptions {
  port: number;
  redisUrl: string;
  instance: string;
  secret: string;
}

declare module "express-session" {
  interface SessionData {
    user: string;
  }
}

const options = JSON.parse(process.argv[2] ?? "{}") as PlainOptions;
const redis = new Redis(options.redisUrl);
const sub = redis.duplicate();
const sessions = session({
  store: new RedisStore({ client: redis, prefix: "plain:sess:" }),
  secret: options.secret,
  resave: false,
  saveUninitialized: false,
  cookie: { maxAge: 7 * 24 * 3600 * 1000, httpOnly: true, sameSite: "lax" },
});

const app = express();
app.post("/login", express.json(), sessions, (req, res) => {
  const user = (req.body as { user?: unknown }).user;
  if (typeof user !== "string" || user === "") return void res.status(400).end();
  req.session.regenerate((err) => {
    if (err) return void res.status(503).end();
    req.session.user = user;
    res.json({ authenticated: true });
  });
});
app.get("/healthz", (_req, res) => void res.send("ok"));

const http = createServer(app);
const io = new Server(http, { adapter: createAdapter(redis, sub) });
io.engine.use(sessions);
io.use((socket, next) => {
  const user = (socket.request as IncomingMessage & { session?: { user?: string } }).session?.user;
  if (user === undefined)
    return next(Object.assign(new Error("SESSION_REQUIRED"), { data: { code: "SESSION_REQUIRED" } }));
  socket.data.user = user;
  next();
});
io.on("connection", (socket) => {
  void socket.join(`user:${socket.data.user as string}`);
  socket.emit("welcome", { instance: options.instance, offset: "0-0" });
});

await new Promise<void>((resolve) => http.listen(options.port, "127.0.0.1", resolve));
process.once("SIGTERM", () => process.exit(0));
process.send?.({ ready: true, port: options.port });
