/**
 * The README's five everyday tasks, type-checked (`npm run typecheck`): each block
 * below is the README's snippet as it stands there. The app's own functions and
 * objects (its login middleware, its UI, its message store) are declared at the top.
 */

import { createServer } from "node:http";
import { createTetherClient, type TetherClient } from "@tether/client";
import { createPublisher, createTether, loadConfig } from "@tether/server";
import express, { type Request, type RequestHandler } from "express";
import { z } from "zod";

interface AppEvents {
  server: { "invoice:paid": { invoiceId: string }; "doc:edit": { op: string } };
  client: { "chat:send": { payload: { text: string }; result: { id: string } } };
}
declare const requireUser: RequestHandler;
declare module "express-serve-static-core" {
  interface Request {
    /** Set by the app's own login middleware. */
    user: User;
    /** The app's session id, as its session middleware (express-session) sets it. */
    sessionID: string;
  }
}
/** The app's signed-in user, as its own login middleware sets it. */
interface User {
  id: string;
}
declare const url: string;
declare function toast(text: string): void;
declare function apply(edit: unknown): void;
declare function online(userId: string, data: unknown): void;
declare function refetch(stream: string): void;
declare const banner: { show(on: boolean): void };
declare const messages: { add(userId: string, text: string): Promise<string> };

export async function server() {
  const app = express();
  const httpServer = createServer(app);
  // 1. Mount it behind your own login
  const tether = await createTether<AppEvents>({ config: loadConfig(), login: false, server: httpServer });
  const grant = (req: Request) => ({ userId: req.user.id, sessionKey: req.sessionID });
  app.post("/tether-token", requireUser, tether.tokenRouteFor(grant));
  // 4. A validated request with a typed reply
  tether.handle("chat:send", z.object({ text: z.string().max(500) }), async ({ text }, { userId }) => ({
    id: await messages.add(userId, text),
  }));
}

export async function worker() {
  // 2. Push to a user from a worker
  const publisher = await createPublisher<AppEvents>(loadConfig());
  await publisher.publish({ user: "alice" }, "invoice:paid", { invoiceId: "inv_42" }, { id: "inv_42:paid" });
}

export async function page() {
  // 1.
  const client: TetherClient<AppEvents> = createTetherClient<AppEvents>({ url, tokenUrl: "/tether-token" }).connect();
  // 2.
  client.on("invoice:paid", ({ invoiceId }) => toast(`Invoice ${invoiceId} paid`));
  // 3. Join a room with its history and presence
  const doc = client.subscribe("doc:42", { presence: { name: "Ada" } });
  doc.on("doc:edit", (edit) => apply(edit));
  doc.on("presence:join", ({ userId, data }) => online(userId, data));
  const { events } = await doc.history({ limit: 50 });
  // 4.
  const { id } = await client.emitWithAck("chat:send", { text: "hello" }); // or a TetherClientError with its code
  // 5. React to a lost connection, a recovery and a failed recovery
  client.on("state", (state) => banner.show(state === "reconnecting")); // events meanwhile are replayed, not lost
  client.on("recovery", ({ recovered, room }) => recovered || refetch(room ?? "inbox"));
  return { events, id };
}
