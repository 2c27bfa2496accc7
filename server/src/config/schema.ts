import { z } from "zod";
import { authEnv } from "../auth/settings.js";
import { optionalText } from "../env/values.js";
import { httpEnv } from "../http/settings.js";
import { observabilityEnv } from "../observability/settings.js";
import { opsEnv } from "../ops/settings.js";
import { realtimeEnv } from "../realtime/settings.js";
import { storeEnv } from "../store/settings.js";

/** The instance's own variable. Unset: `<hostname>-<random>`. */
const instanceEnv = { TETHER_INSTANCE_ID: optionalText };

/**
 * Environment variables of the public contract and their validation: each module
 * declares its slice (and its defaults) beside it, in `<module>/settings.ts`.
 */
export const EnvSchema = z.object({
  ...httpEnv,
  ...storeEnv,
  ...authEnv,
  ...realtimeEnv,
  ...opsEnv,
  ...instanceEnv,
  ...observabilityEnv,
});

export type Env = z.output<typeof EnvSchema>;
