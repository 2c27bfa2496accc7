/**
 * The rooms suite's server process: `startServer` as `npm start` runs it, with
 * a host app's login (the API key plus a user name) and a `canJoin` that reads
 * its policy from a JSON file on every call (`ROOMS_POLICY`: user → rooms, `*`
 * for any), so a test can change who may join between two connects.
 */
import { readFileSync } from "node:fs";
import { apiKeyAndUserLogin, stopOnSignals } from "@tether/testkit/host-process";
import { loadConfig, startServer } from "../../src/index.js";

const config = loadConfig();
const policyFile = process.env.ROOMS_POLICY ?? "";
const policy = (): Record<string, string[]> => JSON.parse(readFileSync(policyFile, "utf8")) as Record<string, string[]>;
const granted = JSON.parse(process.env.ROOMS_OF ?? "{}") as Record<string, string[]>;

const server = await startServer(config, {
  login: apiKeyAndUserLogin(config),
  roomsOf: ({ userId }) => granted[userId] ?? [],
  canJoin: ({ userId }, room) => {
    const rooms = policy()[userId] ?? [];
    return rooms.includes("*") || rooms.includes(room);
  },
});

stopOnSignals(server, config);
