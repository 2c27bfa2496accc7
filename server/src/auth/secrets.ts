import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { AuthStore } from "../store/types.js";
import { Keys } from "./keys.js";

/** A random 256-bit value, base64url (43 characters). */
export function randomSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** Compares two strings in constant time (hashing first hides their lengths). */
export function safeEqual(a: string, b: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(a), digest(b));
}

export interface ResolvedSecrets {
  apiKey: string;
  /** True when the key was generated (by this or another instance), not configured. */
  apiKeyGenerated: boolean;
  sessionSecrets: string[];
}

/**
 * The API key and session secrets: from config when set; otherwise generated
 * once and shared by every instance through the store (SET NX).
 */
export async function resolveSecrets(
  store: AuthStore,
  configured: { apiKey: string | undefined; sessionSecrets: string[] },
): Promise<ResolvedSecrets> {
  const apiKey = configured.apiKey ?? (await store.getOrCreate(Keys.apiKey, randomSecret()));
  const sessionSecrets =
    configured.sessionSecrets.length > 0
      ? configured.sessionSecrets
      : [await store.getOrCreate(Keys.sessionSecret, randomSecret())];
  return { apiKey, apiKeyGenerated: configured.apiKey === undefined, sessionSecrets };
}
