import { z } from "zod";
import { duration, durationOrOff, type EnvOf, limit, list, optionalKey, optionalText, origin } from "../env/values.js";
import type { TrustProxy } from "./client-ip.js";
import type { LimitSpecs } from "./limits.js";

export const AUTH_DEFAULTS = {
  sessionIdleTtlMs: 7 * 24 * 60 * 60 * 1000,
  sessionMaxAgeMs: 30 * 24 * 60 * 60 * 1000,
  wsTokenTtlMs: 60_000,
  /** Life of a resume ticket (0 turns them off); a new one is pushed every half of it. */
  resumeTicketTtlMs: 5 * 60 * 1000,
  /**
   * How often an instance checks that Redis still holds the generated API key and session secret: after
   * Redis lost them, every instance agrees again within this (two small commands per instance per round).
   */
  secretsCheckIntervalMs: 2_000,
} as const;

/** The auth variables and their validation. */
export const authEnv = {
  TETHER_API_KEY: optionalKey,
  TETHER_SESSION_SECRET: list.pipe(z.array(z.string().min(32, "each secret needs at least 32 characters"))),
  TETHER_SESSION_IDLE_TTL: duration(AUTH_DEFAULTS.sessionIdleTtlMs),
  TETHER_SESSION_MAX_AGE: duration(AUTH_DEFAULTS.sessionMaxAgeMs),
  TETHER_WS_TOKEN_TTL: duration(AUTH_DEFAULTS.wsTokenTtlMs),
  TETHER_RESUME_TICKET_TTL: durationOrOff(AUTH_DEFAULTS.resumeTicketTtlMs),
  TETHER_SECRETS_CHECK_INTERVAL: duration(AUTH_DEFAULTS.secretsCheckIntervalMs),
  TETHER_ALLOWED_ORIGINS: list.pipe(z.array(origin)),
  TETHER_TRUST_PROXY: optionalText,
  TETHER_RATE_LIMITS: z.enum(["on", "off"]).default("on"),
  TETHER_RATE_LIMIT_LOGIN: limit("20/1m"),
  TETHER_RATE_LIMIT_LOGIN_ACCOUNT: limit("10/1m"),
  TETHER_RATE_LIMIT_LOGIN_GLOBAL: limit("1000/1m"),
  TETHER_RATE_LIMIT_WS_TOKEN: limit("60/3s"),
  TETHER_RATE_LIMIT_HANDSHAKE_SESSION: limit("60/3s"),
  TETHER_RATE_LIMIT_HANDSHAKE_IP: limit("600/10s"),
};

/** The auth part of the configuration. */
export interface AuthConfig {
  /** Unset: generated once and shared through the store. */
  apiKey: string | undefined;
  /** Unset: generated once and shared through the store. The first signs, all verify. */
  sessionSecrets: string[];
  sessionIdleTtlMs: number;
  sessionMaxAgeMs: number;
  wsTokenTtlMs: number;
  /** Life of a resume ticket; 0 = no tickets (every reconnect fetches a token). */
  resumeTicketTtlMs: number;
  /** How often each instance checks that Redis still holds the generated secrets (and puts them back). */
  secretsCheckIntervalMs: number;
  /** Empty: same origin only. */
  allowedOrigins: string[];
  /** express `trust proxy` value, already parsed. */
  trustProxy: TrustProxy;
  /** False: every limit is off (`TETHER_RATE_LIMITS=off`). */
  rateLimits: boolean;
  limits: LimitSpecs;
}

function parseTrustProxy(text: string | undefined): TrustProxy {
  if (text === undefined) return undefined;
  if (text === "true") return true;
  if (text === "false") return false;
  if (/^\d+$/.test(text)) return Number(text);
  return text;
}

export function authConfig(e: EnvOf<typeof authEnv>): AuthConfig {
  return {
    apiKey: e.TETHER_API_KEY,
    sessionSecrets: e.TETHER_SESSION_SECRET,
    sessionIdleTtlMs: e.TETHER_SESSION_IDLE_TTL,
    sessionMaxAgeMs: e.TETHER_SESSION_MAX_AGE,
    wsTokenTtlMs: e.TETHER_WS_TOKEN_TTL,
    resumeTicketTtlMs: e.TETHER_RESUME_TICKET_TTL,
    secretsCheckIntervalMs: e.TETHER_SECRETS_CHECK_INTERVAL,
    allowedOrigins: e.TETHER_ALLOWED_ORIGINS,
    trustProxy: parseTrustProxy(e.TETHER_TRUST_PROXY),
    rateLimits: e.TETHER_RATE_LIMITS === "on",
    limits: {
      login: e.TETHER_RATE_LIMIT_LOGIN,
      loginAccount: e.TETHER_RATE_LIMIT_LOGIN_ACCOUNT,
      loginGlobal: e.TETHER_RATE_LIMIT_LOGIN_GLOBAL,
      token: e.TETHER_RATE_LIMIT_WS_TOKEN,
      handshakeSession: e.TETHER_RATE_LIMIT_HANDSHAKE_SESSION,
      handshakeIp: e.TETHER_RATE_LIMIT_HANDSHAKE_IP,
    },
  };
}
