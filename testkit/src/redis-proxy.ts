import { createConnection, createServer, type Socket } from "node:net";
import { freePort } from "./ports.js";

/**
 * A TCP proxy in front of one redis-server that can make an instance's
 * subscriber connection half-open: Redis sees it closed (its subscriptions are
 * gone, what is published is lost), the instance sees nothing at all (no
 * close, no error, no data), as after a NAT or load balancer silently dropped it.
 */
export interface RedisProxy {
  readonly url: string;
  /** Half-opens every open connection named `name` (ioredis sends CLIENT SETNAME first); returns how many. */
  deafen(name: string): number;
  close(): Promise<void>;
}

export async function startRedisProxy(redisPort: number): Promise<RedisProxy> {
  const port = await freePort();
  const links = new Set<{ client: Socket; upstream: Socket; sent: string; deaf: boolean }>();
  // allowHalfOpen: a deafened client's FIN is not answered, so its side stays open until it gives up.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: redisPort });
    const link = { client, upstream, sent: "", deaf: false };
    links.add(link);
    const close = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      if (link.deaf) return;
      if (link.sent.length < 512) link.sent += chunk.toString("latin1", 0, 512);
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!link.deaf) client.write(chunk);
    });
    client.on("error", close).on("close", close);
    client.on("end", () => {
      if (!link.deaf) close();
    });
    upstream.on("error", () => (link.deaf ? undefined : close()));
    upstream.on("close", () => (link.deaf ? undefined : close()));
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `redis://127.0.0.1:${port}`,
    deafen(name) {
      let count = 0;
      for (const link of links) {
        if (link.deaf || !link.sent.includes(name)) continue;
        link.deaf = true;
        link.upstream.destroy();
        count += 1;
      }
      return count;
    },
    async close() {
      for (const link of links) {
        link.client.destroy();
        link.upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
