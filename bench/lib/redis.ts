/** The redis-server Tether runs against: the bench's own, on a free port. */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../server/test/helpers/ports.js";
import { waitFor } from "../../server/test/helpers/wait.js";
import { onExit, spawnTracked, whileAlive } from "./procs.js";

export interface BenchRedis {
  url: string;
  child: ChildProcess;
}

/** PING until redis-server answers PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("error", () => done(false));
    socket.once("data", (data) => {
      socket.destroy();
      done(data.toString().startsWith("+PONG"));
    });
    socket.write("PING\r\n");
  });
}

/** A throwaway redis-server on a free port, no persistence. */
export async function startRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "tether-bench-redis-"));
  onExit(() => rmSync(dir, { recursive: true, force: true }));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"];
  const child = spawnTracked("redis-server", [...args, "--loglevel", "warning"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  await whileAlive(
    child,
    "redis-server",
    waitFor(`redis-server on port ${port}`, () => ping(port)),
  );
  return { url: `redis://127.0.0.1:${port}`, child };
}
