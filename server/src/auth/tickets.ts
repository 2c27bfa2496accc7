import { createCipheriv, createDecipheriv, hkdfSync } from "node:crypto";
import { randomBytesPooled } from "./secrets.js";

/** What a resume ticket carries, sealed: the session, when it expires, and a nonce for single use. */
export interface TicketClaims {
  sid: string;
  expiresAt: number;
  nonce: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_INFO = "tether resume ticket v1";

/**
 * Resume tickets: a connected client holds one, pushed by the server, and
 * presents it on its next reconnect instead of fetching a WS token over HTTP.
 * A ticket is the claims sealed with AES-256-GCM under a key derived (HKDF) from
 * the session secret: issuing one costs no Redis write and no per-socket state;
 * the session id inside is never readable by the page. Single use is enforced
 * when it is consumed (the nonce is set NX), and the session must still exist.
 * Every current session secret opens tickets, so secret rotation keeps them.
 */
export class ResumeTickets {
  private readonly keys = new Map<string, Buffer>();

  /**
   * @param secrets the live list of session secrets (the first seals); it may change.
   * @param ttlMs how long a ticket is valid.
   */
  constructor(
    private readonly secrets: readonly string[],
    readonly ttlMs: number,
  ) {}

  issue(sid: string, now = Date.now()): { ticket: string; expiresAt: number } {
    const expiresAt = now + this.ttlMs;
    const claims: TicketClaims = { sid, expiresAt, nonce: randomBytesPooled(16).toString("base64url") };
    const iv = randomBytesPooled(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.keyOf(this.secrets[0] ?? ""), iv);
    const sealed = Buffer.concat([cipher.update(JSON.stringify(claims), "utf8"), cipher.final()]);
    return { ticket: Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString("base64url"), expiresAt };
  }

  /** The claims of a genuine, unexpired ticket; undefined otherwise (forged, tampered, expired, old secret). */
  open(ticket: string, now = Date.now()): TicketClaims | undefined {
    const raw = Buffer.from(ticket, "base64url");
    if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
    const iv = raw.subarray(0, IV_BYTES);
    const tag = raw.subarray(raw.length - TAG_BYTES);
    const sealed = raw.subarray(IV_BYTES, raw.length - TAG_BYTES);
    for (const secret of this.secrets) {
      try {
        const decipher = createDecipheriv("aes-256-gcm", this.keyOf(secret), iv);
        decipher.setAuthTag(tag);
        const claims = JSON.parse(
          Buffer.concat([decipher.update(sealed), decipher.final()]).toString("utf8"),
        ) as TicketClaims;
        if (typeof claims.sid !== "string" || typeof claims.nonce !== "string" || typeof claims.expiresAt !== "number")
          return undefined;
        return claims.expiresAt > now ? claims : undefined;
      } catch {
        // Not sealed under this secret: try the next.
      }
    }
    return undefined;
  }

  private keyOf(secret: string): Buffer {
    let key = this.keys.get(secret);
    if (!key) {
      key = Buffer.from(hkdfSync("sha256", secret, "", KEY_INFO, 32));
      this.keys.set(secret, key);
    }
    return key;
  }
}
