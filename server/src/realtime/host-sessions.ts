import type { IncomingMessage } from "node:http";
import { ErrorCode, SessionEndReason } from "@tether/shared";
import { hostSessionId } from "../auth/keys.js";
import type { OriginPolicy } from "../auth/origins.js";
import type { AuthService, HostSessionGrant } from "../auth/service.js";
import { TetherError } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";
import type { Realtime } from "./server.js";

/** What the host's session calls work with; `realtime` is undefined until `attach`. */
export interface HostSessionsDeps {
  auth: AuthService;
  origins: OriginPolicy;
  metrics: Metrics;
  realtime(): Realtime | undefined;
}

/** Sessions the host app signed in itself (`tether.issueTokenFor`, `tether.endSession`). */
export function hostSessions(deps: HostSessionsDeps) {
  const { auth, metrics } = deps;
  return {
    async issueTokenFor(req: IncomingMessage, grant: HostSessionGrant): Promise<{ token: string; expiresAt: number }> {
      if (!deps.origins.allows(req)) throw new TetherError(ErrorCode.OriginForbidden);
      const minted = await auth.issueTokenFor(req, grant);
      metrics.tokens.inc({ result: "issued" });
      return minted;
    },
    async endSession(sessionKey: string, reason: SessionEndReason = SessionEndReason.Logout): Promise<void> {
      // As at logout: tell every instance first, so a liveness check in between does not say "revoked".
      const sid = hostSessionId(sessionKey);
      const realtime = deps.realtime();
      if (realtime) await realtime.endSession(sid, reason);
      await auth.endHostSession(sessionKey);
    },
  };
}
