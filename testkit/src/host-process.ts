/**
 * Pieces of the tests' own host-app processes (a `host.ts` beside a suite): started
 * by `startInstance({ main })` exactly as `npm start` is, and stopped the same way.
 */
import type { LoginCheck, RunningServer, TetherConfig } from "@tether/server";

/** SIGTERM/SIGINT: a graceful stop (drain, then exit 0), exit 1 past the shutdown deadline. */
export function stopOnSignals(server: RunningServer, config: TetherConfig): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), config.shutdownTimeoutMs).unref();
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/**
 * A host's login check for tests that need many users: the API key plus a user
 * name (`{ apiKey, user }`), so each simulated user has a session and stream of its own.
 */
export function apiKeyAndUserLogin(config: TetherConfig, isUser: (user: string) => boolean = () => true): LoginCheck {
  return (req) => {
    const body = (req.body ?? {}) as { apiKey?: unknown; user?: unknown };
    if (body.apiKey !== config.apiKey || typeof body.user !== "string" || !isUser(body.user)) return null;
    return body.user;
  };
}
