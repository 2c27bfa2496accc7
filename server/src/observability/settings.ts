import { z } from "zod";
import { LOG_LEVELS } from "./logger.js";

/** The logger's variable. */
export const observabilityEnv = {
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
};
