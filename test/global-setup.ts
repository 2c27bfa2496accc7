import { execFileSync, spawnSync } from "node:child_process";

/** Is this program on PATH? */
function onPath(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

/**
 * The tests run against a real redis-server. Install it where we can (Debian
 * or Ubuntu as root); otherwise stop at once with the one command that does.
 */
export default function ensureRedis(): void {
  if (onPath("redis-server")) return;
  const isRoot = process.getuid?.() === 0;
  if (isRoot && onPath("apt-get")) {
    process.stdout.write("redis-server is missing: installing it with apt-get…\n");
    execFileSync(
      "sh",
      ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server"],
      {
        stdio: "inherit",
      },
    );
    if (onPath("redis-server")) return;
  }
  const hint = onPath("brew")
    ? "brew install redis"
    : onPath("apt-get")
      ? "sudo apt-get install -y redis-server"
      : "install redis-server (7.0 or newer) and put it on PATH";
  throw new Error(`The tests need a real redis-server and none is on PATH. Run: ${hint}`);
}
