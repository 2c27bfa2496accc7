import type { Logger } from "pino";
import type { StoreConfig } from "../store/settings.js";
import type { Backend } from "../store/types.js";

/** What the banner says about the instance that started. */
export interface Started {
  /** e.g. `http://127.0.0.1:3000` */
  url: string;
  instanceId: string;
  apiKey: string;
  apiKeyGenerated: boolean;
  store: Backend["kind"];
  redisUrl: StoreConfig["redisUrl"];
  logger: Logger;
}

/** The start banner: where Tether listens, the login key, and the storage mode. */
export function printBanner(started: Started): void {
  const lines = [
    "",
    `  Tether listening on ${started.url}  (instance ${started.instanceId})`,
    !started.apiKeyGenerated
      ? "  API key: from TETHER_API_KEY"
      : started.store === "embedded"
        ? `  API key (generated for this process): ${started.apiKey}`
        : `  API key (generated once, shared by every instance through Redis): ${started.apiKey}`,
  ];
  if (started.store === "embedded") {
    lines.push(
      "",
      "  !! EMBEDDED MODE: no REDIS_URL, so sessions and tokens live in this process.",
      "  !! Restarting it logs everyone out, and it cannot scale beyond one instance.",
      "  !! Set REDIS_URL=redis://… for production.",
    );
  } else {
    lines.push(`  Store: Redis (${redact(started.redisUrl ?? "")})`);
  }
  process.stdout.write(`${lines.join("\n")}\n\n`);
  started.logger.info({ url: started.url, store: started.store }, "tether started");
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
