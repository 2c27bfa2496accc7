import type { TetherConfig } from "../config/config.js";
import type { RunningServer } from "../server.js";

/** The start banner: where Tether listens, the login key, and the storage mode. */
export function printBanner(server: RunningServer, config: TetherConfig): void {
  const { tether } = server;
  const lines = [
    "",
    `  Tether listening on ${server.url}  (instance ${config.instanceId})`,
    !tether.apiKeyGenerated
      ? "  API key: from TETHER_API_KEY"
      : tether.backend.kind === "embedded"
        ? `  API key (generated for this process): ${tether.apiKey}`
        : `  API key (generated once, shared by every instance through Redis): ${tether.apiKey}`,
  ];
  if (tether.backend.kind === "embedded") {
    lines.push(
      "",
      "  !! EMBEDDED MODE: no REDIS_URL, so sessions and tokens live in this process.",
      "  !! Restarting it logs everyone out, and it cannot scale beyond one instance.",
      "  !! Set REDIS_URL=redis://… for production.",
    );
  } else {
    lines.push(`  Store: Redis (${redact(config.redisUrl ?? "")})`);
  }
  process.stdout.write(`${lines.join("\n")}\n\n`);
  tether.logger.info({ url: server.url, store: tether.backend.kind }, "tether started");
}

/** A Redis URL without its password. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "redis";
  }
}
