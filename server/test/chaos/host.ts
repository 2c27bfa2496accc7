/**
 * The chaos suite's server process: `startServer` as `npm start` runs it, with
 * a host app's login check (the API key plus a user name, so each simulated
 * user has its own stream) and rooms with history (`CHAOS_ROOMS`, a JSON map
 * user → rooms), so room streams are under test too.
 */
import { loadConfig, startServer } from "../../src/index.js";

const config = loadConfig();
const rooms = JSON.parse(process.env.CHAOS_ROOMS ?? "{}") as Record<string, string[]>;

const server = await startServer(config, {
  login: (req) => {
    const body = (req.body ?? {}) as { apiKey?: unknown; user?: unknown };
    if (body.apiKey !== config.apiKey || typeof body.user !== "string" || !(body.user in rooms)) return null;
    return body.user;
  },
  roomsOf: (identity) => rooms[identity.userId] ?? [],
});
server.tether.logger.info({ url: server.url }, "chaos host ready");

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), config.shutdownTimeoutMs).unref();
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
