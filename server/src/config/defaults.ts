import { AUTH_DEFAULTS } from "../auth/settings.js";
import { DEMO_DEFAULTS } from "../demo/settings.js";
import { HTTP_DEFAULTS } from "../http/settings.js";
import { OPS_DEFAULTS } from "../ops/settings.js";
import { REALTIME_DEFAULTS, SOCKET_DEFAULTS } from "../realtime/settings.js";
import { STORE_DEFAULTS } from "../store/settings.js";

/**
 * Every named default of the server, with its unit, in one view: each is declared
 * beside the module that owns it (`<module>/settings.ts`); this only gathers them.
 */
export const DEFAULTS = {
  ...HTTP_DEFAULTS,
  ...STORE_DEFAULTS,
  ...AUTH_DEFAULTS,
  ...REALTIME_DEFAULTS,
  ...SOCKET_DEFAULTS,
  ...OPS_DEFAULTS,
  ...DEMO_DEFAULTS,
} as const;
