/** Typed request/response over a child process's IPC channel (`process.send`). */
import type { ChildProcess } from "node:child_process";
import type { Protocol, Ready } from "./protocol.js";

interface RequestMessage {
  id: number;
  kind: string;
  command: object;
}

type ReplyMessage = { id: number; result: object } | { id: number; error: string };

/** The parent's side: send a command, get its result. */
export class Peer<P extends Protocol> {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: object) => void; reject: (err: Error) => void }>();

  private constructor(readonly child: ChildProcess) {
    child.on("message", (message: ReplyMessage) => {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if ("error" in message) waiter.reject(new Error(message.error));
      else waiter.resolve(message.result);
    });
    child.once("exit", (code, signal) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`child exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  /** Wraps a child spawned with an IPC channel; resolves once it says it is ready. */
  static connect<P extends Protocol>(
    child: ChildProcess,
    timeoutMs = 30_000,
  ): Promise<{ peer: Peer<P>; ready: Ready }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("child not ready in time")), timeoutMs);
      child.once("exit", (code) => reject(new Error(`child exited with ${code} before it was ready`)));
      child.once("message", (ready: Ready) => {
        clearTimeout(timer);
        resolve({ peer: new Peer<P>(child), ready });
      });
    });
  }

  request<K extends keyof P & string>(kind: K, command: P[K]["command"]): Promise<P[K]["result"]> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: (value) => resolve(value as P[K]["result"]), reject });
      this.child.send({ id, kind, command } satisfies RequestMessage);
    });
  }
}

/** The child's side of a protocol. */
export type Handlers<P extends Protocol> = {
  [K in keyof P]: (command: P[K]["command"]) => P[K]["result"] | Promise<P[K]["result"]>;
};

/**
 * Answers the parent's commands, then says it is ready. The child exits when
 * its parent goes away, so a crashed bench leaves no clients behind.
 */
export function serve<P extends Protocol>(handlers: Handlers<P>, ready: Omit<Ready, "ready"> = {}): void {
  const send = (message: ReplyMessage | Ready) => process.send?.(message);
  process.on("message", async ({ id, kind, command }: RequestMessage) => {
    const handler = handlers[kind] as ((command: object) => object | Promise<object>) | undefined;
    try {
      if (!handler) throw new Error(`unknown command ${kind}`);
      send({ id, result: await handler(command) });
    } catch (err) {
      send({ id, error: err instanceof Error ? err.message : String(err) });
    }
  });
  process.once("disconnect", () => process.exit(0));
  send({ ready: true, ...ready });
}
