import { createCipheriv, hkdfSync, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ResumeTickets } from "../src/auth/tickets.js";

const SECRET = "ticket-format-secret-0123456789abcdef";
const SID = "Qk2Ld8n3Vb6sPq1ZxT9rWy4uEo7iAa5c";

/** A ticket as releases before the compact layout sealed it: the claims as JSON, a nonce of its own. */
function jsonTicket(secret: string, claims: { sid: string; expiresAt: number; nonce: string }): string {
  const key = Buffer.from(hkdfSync("sha256", secret, "", "tether resume ticket v1", 32));
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const sealed = Buffer.concat([cipher.update(JSON.stringify(claims), "utf8"), cipher.final()]);
  return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString("base64url");
}

describe("resume tickets' sealed layout", () => {
  it("a ticket opens to its session and expiry, with a nonce of its own; it is short", () => {
    const tickets = new ResumeTickets([SECRET], 60_000);
    const now = Date.now();
    const [a, b] = [tickets.issue(SID, now), tickets.issue(SID, now)];
    const [ca, cb] = [tickets.open(a.ticket, now), tickets.open(b.ticket, now)];
    expect(ca).toMatchObject({ sid: SID, expiresAt: now + 60_000 });
    expect(a.expiresAt).toBe(now + 60_000);
    expect(ca?.nonce).not.toBe(cb?.nonce);
    // 12 IV + 1 + 6 + 32 + 16 tag bytes, base64url: it rides in every welcome and reconnect.
    expect(a.ticket.length).toBeLessThanOrEqual(90);
    // Host-issued session ids (longer, with a colon) round-trip as well.
    const host = `host:${"x".repeat(43)}`;
    expect(tickets.open(tickets.issue(host, now).ticket, now)?.sid).toBe(host);
  });

  it("a ticket an earlier release sealed (JSON) still opens during a rolling upgrade", () => {
    const tickets = new ResumeTickets([SECRET], 60_000);
    const claims = { sid: SID, expiresAt: Date.now() + 30_000, nonce: randomBytes(16).toString("base64url") };
    expect(tickets.open(jsonTicket(SECRET, claims))).toEqual(claims);
    expect(tickets.open(jsonTicket(SECRET, { ...claims, expiresAt: Date.now() - 1 }))).toBeUndefined();
  });

  it("expired, tampered, foreign-secret and truncated tickets do not open; a rotated-out signer still does", () => {
    const now = Date.now();
    const old = new ResumeTickets(["old-secret-0123456789abcdefghij"], 1_000);
    const ticket = old.issue(SID, now).ticket;
    // The signer rotated: the first secret seals, every listed one opens.
    const rotated = new ResumeTickets([SECRET, "old-secret-0123456789abcdefghij"], 1_000);
    expect(rotated.open(ticket, now)?.sid).toBe(SID);
    expect(rotated.open(ticket, now + 1_000)).toBeUndefined();
    expect(new ResumeTickets([SECRET], 1_000).open(ticket, now)).toBeUndefined();
    const raw = Buffer.from(ticket, "base64url");
    for (const at of [0, 12, 14, raw.length - 1]) {
      const flipped = Buffer.from(raw);
      flipped[at] = (flipped[at] ?? 0) ^ 1;
      expect(rotated.open(flipped.toString("base64url"), now)).toBeUndefined();
    }
    expect(rotated.open(raw.subarray(0, 28).toString("base64url"), now)).toBeUndefined();
  });
});
