/**
 * A Tether instance as `npm start` runs it (`startServer`), with the host-app
 * login the README documents: the login check returns the user id the request
 * names, so each simulated user gets a session of their own. Every limit and
 * cap is the default unless the environment (set by the bench) says otherwise.
 */
import { loadConfig, startServer } from "@tether/server";

const server = await startServer(loadConfig(), {
  login: (req) => {
    const user = (req.body as { user?: unknown } | undefined)?.user;
    return typeof user === "string" ? user : null;
  },
});
process.once("SIGTERM", () => {
  void server.close().finally(() => process.exit(0));
});
