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
/** The sealed layout of tickets issued now: this byte, the expiry (48-bit ms), the session id (UTF-8). */
const COMPACT = 2;
const EXPIRY_BYTES = 6;
/** The first byte of a ticket sealed by earlier releases: its claims as JSON. */
const JSON_OPEN_BRACE = 0x7b;

/**
 * Resume tickets: a connected client holds one, pushed by the server, and
 * presents it on its next reconnect instead of fetching a WS token over HTTP.
 * A ticket is the claims sealed with AES-256-GCM under a key derived (HKDF) from
 * the session secret: issuing one costs no Redis write and no per-socket state;
 * the session id inside is never readable by the page. Single use is enforced
 * when it is consumed (the nonce is set NX), and the session must still exist.
 * Every current session secret opens tickets, so secret rotation keeps them.
 *
 * Sealed as bytes, not JSON, and the nonce is the IV (random, and authenticated
 * by GCM): a ticket rides in every `welcome` and every reconnect's handshake, and
 * this one is ≈ 90 characters rather than ≈ 160. Tickets sealed as JSON by
 * earlier releases still open (a rolling upgrade keeps them).
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
    const claims = Buffer.allocUnsafe(1 + EXPIRY_BYTES + Buffer.byteLength(sid));
    claims[0] = COMPACT;
    claims.writeUIntBE(expiresAt, 1, EXPIRY_BYTES);
    claims.write(sid, 1 + EXPIRY_BYTES, "utf8");
    const iv = randomBytesPooled(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.keyOf(this.secrets[0] ?? ""), iv);
    const sealed = cipher.update(claims);
    cipher.final();
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
      let plain: Buffer;
      try {
        const decipher = createDecipheriv("aes-256-gcm", this.keyOf(secret), iv);
        decipher.setAuthTag(tag);
        plain = decipher.update(sealed);
        decipher.final();
      } catch {
        // Not sealed under this secret: try the next.
        continue;
      }
      const claims = claimsOf(plain, iv);
      return claims && claims.expiresAt > now ? claims : undefined;
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

/** A genuine ticket's claims from its opened bytes: the compact layout, or an earlier release's JSON. */
function claimsOf(plain: Buffer, iv: Buffer): TicketClaims | undefined {
  if (plain[0] === COMPACT && plain.length > 1 + EXPIRY_BYTES) {
    return {
      sid: plain.toString("utf8", 1 + EXPIRY_BYTES),
      expiresAt: plain.readUIntBE(1, EXPIRY_BYTES),
      nonce: iv.toString("base64url"),
    };
  }
  if (plain[0] !== JSON_OPEN_BRACE) return undefined;
  try {
    const claims = JSON.parse(plain.toString("utf8")) as TicketClaims;
    if (typeof claims.sid !== "string" || typeof claims.nonce !== "string" || typeof claims.expiresAt !== "number")
      return undefined;
    return claims;
  } catch {
    return undefined;
  }
}
