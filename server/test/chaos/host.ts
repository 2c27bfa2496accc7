/**
 * The chaos suite's server process: `startServer` as `npm start` runs it, with
 * a host app's login check (the API key plus a user name, so each simulated
 * user has its own stream) and rooms with history (`CHAOS_ROOMS`, a JSON map
 * user → rooms), so room streams are under test too.
 */

import { apiKeyAndUserLogin, stopOnSignals } from "@tether/testkit/host-process";
import { loadConfig, startServer } from "../../src/index.js";

const config = loadConfig();
const rooms = JSON.parse(process.env.CHAOS_ROOMS ?? "{}") as Record<string, string[]>;

const server = await startServer(config, {
  login: apiKeyAndUserLogin(config, (user) => user in rooms),
  roomsOf: (identity) => rooms[identity.userId] ?? [],
});
server.tether.logger.info({ url: server.url }, "chaos host ready");

stopOnSignals(server, config);
