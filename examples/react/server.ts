/**
 * The server of the React example: Tether with a toy login (any user name that
 * matches NAME_PATTERN: anyone may be anyone, replace it with your own check), the
 * lobby open to every user, and `chat:send`, which publishes the message to the lobby.
 * Serves the built app from `staticDir` when given (the dev server proxies instead).
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHttpServer, createTether, loadConfig, securityHeaders, type Tether } from "@tether/server";
import type { StandardSchemaV1 } from "@tether/shared";
import express from "express";
import { type ChatEvents, LOBBY, MAX_TEXT, NAME_PATTERN } from "./src/events.js";

type SendPayload = ChatEvents["client"]["chat:send"]["payload"];

/** `chat:send`'s payload check, as a Standard Schema (zod or valibot would do the same). */
const sendSchema: StandardSchemaV1<unknown, SendPayload> = {
  "~standard": {
    version: 1,
    vendor: "tether-example",
    validate: (value) => {
      const { text } = (value ?? {}) as { text?: unknown };
      if (typeof text !== "string" || text.trim() === "" || text.length > MAX_TEXT)
        return { issues: [{ message: `text: 1 to ${MAX_TEXT} characters`, path: ["text"] }] };
      return { value: { text } };
    },
  },
};

export interface ReactExampleServer {
  readonly url: string;
  readonly tether: Tether<ChatEvents>;
  close(): Promise<void>;
}

/** Starts the example's server on `env.PORT` (0: any free port); `REDIS_URL` for Redis, else embedded. */
export async function startReactExampleServer(
  env: Record<string, string | undefined> = process.env,
  staticDir?: string,
): Promise<ReactExampleServer> {
  const config = loadConfig(env);
  const tether = await createTether<ChatEvents>({
    config,
    login: (req) => {
      const { name } = (req.body ?? {}) as { name?: unknown };
      return typeof name === "string" && NAME_PATTERN.test(name) ? name : null;
    },
    canJoin: (_identity, room) => room === LOBBY,
  });
  tether.handle("chat:send", sendSchema, async ({ text }, { userId }) => {
    await tether.publisher.publish({ room: LOBBY }, "chat:message", { text, by: userId });
    return { ok: true as const };
  });
  const app = express();
  app.disable("x-powered-by");
  app.use(securityHeaders());
  app.use(tether.router);
  if (staticDir) app.use(express.static(staticDir));
  const http: Server = createHttpServer(config.http, app);
  tether.attach(http);
  await new Promise<void>((done) => http.listen(config.port, config.host, done));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${port}`,
    tether,
    close: async () => {
      await tether.close();
      http.closeAllConnections();
      await new Promise((done) => http.close(done));
    },
  };
}

// `node --import tsx examples/react/server.ts`: the dev server's backend on :3000.
if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await startReactExampleServer({ HOST: "127.0.0.1", PORT: "3000", ...process.env });
  process.stdout.write(`React example's server on ${server.url}\n`);
}
