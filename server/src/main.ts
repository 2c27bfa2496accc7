#!/usr/bin/env node
/** `npm start`: one Tether instance in the foreground, configured from the environment. */
import { ConfigError, loadConfig } from "./config/config.js";
import { printBanner } from "./ops/banner.js";
import { startServer } from "./server.js";

/** A refused configuration: each problem on its own line, then the mistyped names that may explain it. */
function refuse(err: ConfigError): never {
  process.stderr.write(`tether: ${err.message}\n`);
  for (const warning of err.warnings) process.stderr.write(`tether: warning: ${warning}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    config = loadConfig();
    server = await startServer(config);
  } catch (err) {
    if (err instanceof ConfigError) refuse(err);
    throw err;
  }
  const { tether } = server;
  printBanner({
    url: server.url,
    instanceId: config.instanceId,
    apiKey: tether.apiKey,
    apiKeyGenerated: tether.apiKeyGenerated,
    store: tether.backend.kind,
    redisUrl: config.redisUrl,
    logger: tether.logger,
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.tether.logger.info({ signal, deadlineMs: config.shutdownTimeoutMs }, "shutting down");
    setTimeout(() => {
      server.tether.logger.error("shutdown deadline passed; exiting anyway");
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        server.tether.logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(`tether: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
