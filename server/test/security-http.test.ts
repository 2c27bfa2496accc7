import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode } from "@tether/shared";
import { login, post, refusal, type TestSession, wsToken } from "@tether/testkit/http";
import { LOG_DIR, startInstance, type TestInstance } from "@tether/testkit/instance";
import { openRaw } from "@tether/testkit/raw";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const API_KEY = "http-security-api-key-0123456789";
const OLD_SECRET = "old-session-secret-0123456789abcdef0123";
const NEW_SECRET = "new-session-secret-0123456789abcdef0123";
/** Every secret this file sees, to grep the logs for at the end. */
const secrets = new Set<string>([API_KEY]);

let nextIp = 1;
/** A distinct client IP (through the trusted loopback proxy) per login, so the login limit only bites where a test wants it. */
const fromNewIp = () => ({ "x-forwarded-for": `192.0.2.${nextIp++}` });

function sidOf(session: TestSession): string {
  const signed = decodeURIComponent(session.cookie.split("=")[1] ?? "");
  return signed.slice(2, signed.indexOf("."));
}

function remember(session: TestSession): TestSession {
  secrets.add(sidOf(session));
  secrets.add(session.cookie.split("=")[1] ?? "");
  return session;
}

describe("HTTP and session security", () => {
  let redis: TestRedis;
  let a: TestInstance;
  let b: TestInstance;
  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL: redis.url,
    TETHER_API_KEY: API_KEY,
    TETHER_SESSION_SECRET: OLD_SECRET,
    TETHER_TRUST_PROXY: "loopback",
    TETHER_RATE_LIMITS: "on",
    TETHER_RATE_LIMIT_LOGIN: "10/1m",
    LOG_LEVEL: "debug",
    ...extra,
  });

  beforeAll(async () => {
    redis = await startRedis();
    [a, b] = await Promise.all([startInstance(env()), startInstance(env())]);
  });
  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.close();
  });

  describe("origins (CSRF and cross-site WebSocket hijacking)", () => {
    it("state-changing routes refuse a foreign Origin with ORIGIN_FORBIDDEN", async () => {
      const session = remember(await login(a.url, API_KEY, fromNewIp()));
      const evil = { origin: "http://127.0.0.2:9999", cookie: session.cookie };
      for (const path of ["/api/auth/login", "/api/auth/logout", "/api/auth/ws-token", "/api/jobs"]) {
        const res = await post(`${a.url}${path}`, { apiKey: API_KEY, steps: 1, intervalMs: 1 }, evil);
        expect(res.status).toBe(403);
        expect(res.body).toMatchObject({ error: { code: ErrorCode.OriginForbidden } });
        expect(res.headers.get("access-control-allow-origin")).toBeNull();
      }
      // The same origin, and clients that send no Origin at all, are served.
      expect(
        (await post(`${a.url}/api/auth/ws-token`, undefined, { cookie: session.cookie, origin: a.url })).status,
      ).toBe(200);
      expect((await post(`${a.url}/api/auth/ws-token`, undefined, { cookie: session.cookie })).status).toBe(200);
    });

    it("a WebSocket upgrade from a foreign Origin never opens", async () => {
      await expect(openRaw(a.url, "EIO=4&transport=websocket", { origin: "http://127.0.0.2:9999" })).rejects.toThrow(
        /HTTP 40[03]/,
      );
      const polling = await fetch(`${a.url}/socket.io/?EIO=4&transport=polling`, {
        headers: { origin: "http://evil.example" },
      });
      expect(polling.status).toBe(403);
      // A no-cors GET from another site carries no Origin, but the browser says where it comes from.
      const noCors = await fetch(`${a.url}/socket.io/?EIO=4&transport=polling`, {
        headers: { "sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors" },
      });
      expect(noCors.status).toBe(403);
      const ownPage = await fetch(`${a.url}/socket.io/?EIO=4&transport=polling`, {
        headers: { "sec-fetch-site": "same-origin" },
      });
      expect(ownPage.status).toBe(200);
      const same = await openRaw(a.url, "EIO=4&transport=websocket", { origin: a.url });
      same.close();
    });

    it("with an allowlist, listed origins get CORS with credentials and others are refused", async () => {
      const app = "http://127.0.0.3:5173";
      const listed = await startInstance(env({ TETHER_ALLOWED_ORIGINS: app }));
      try {
        const preflight = await fetch(`${listed.url}/api/auth/ws-token`, {
          method: "OPTIONS",
          headers: { origin: app, "access-control-request-method": "POST" },
        });
        expect(preflight.headers.get("access-control-allow-origin")).toBe(app);
        expect(preflight.headers.get("access-control-allow-credentials")).toBe("true");
        const session = remember(await login(listed.url, API_KEY, fromNewIp()));
        expect(
          (await post(`${listed.url}/api/auth/ws-token`, undefined, { cookie: session.cookie, origin: app })).status,
        ).toBe(200);
        const sameHost = await post(`${listed.url}/api/auth/ws-token`, undefined, {
          cookie: session.cookie,
          origin: listed.url,
        });
        expect(sameHost.status).toBe(403);
        await expect(
          openRaw(listed.url, "EIO=4&transport=websocket", { origin: "http://127.0.0.2:1" }),
        ).rejects.toThrow(/HTTP 40[03]/);
      } finally {
        await listed.kill();
      }
    });
  });

  describe("brute force", () => {
    it("logins from one IP hit 429 with Retry-After after the limit, on every instance, while another IP still logs in", async () => {
      const attacker = { "x-forwarded-for": "203.0.113.7" };
      const statuses: number[] = [];
      for (let i = 0; i < 100; i++) {
        const instance = i % 2 === 0 ? a : b;
        const res = await post(`${instance.url}/api/auth/login`, { apiKey: `wrong-key-${i}-padding` }, attacker);
        statuses.push(res.status);
        if (res.status === 429) {
          expect(res.body).toMatchObject({ error: { code: ErrorCode.RateLimited } });
          expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
        }
      }
      expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
      expect(statuses.slice(10).every((s) => s === 429)).toBe(true);
      // The right key from the attacker's IP is refused too: the limit counts attempts, not failures.
      expect((await post(`${b.url}/api/auth/login`, { apiKey: API_KEY }, attacker)).status).toBe(429);
      const other = await post(`${a.url}/api/auth/login`, { apiKey: API_KEY }, { "x-forwarded-for": "198.51.100.4" });
      expect(other.status).toBe(200);
    });

    it("X-Forwarded-For is ignored unless the proxy is trusted", async () => {
      // A Redis of its own: this instance sees every request as 127.0.0.1, which the rest of the file uses too.
      const ownRedis = await startRedis();
      const direct = await startInstance({
        ...env({ TETHER_TRUST_PROXY: "", TETHER_RATE_LIMIT_LOGIN: "3/1m" }),
        REDIS_URL: ownRedis.url,
      });
      try {
        const spoofed = await Promise.all(
          Array.from({ length: 5 }, (_, i) =>
            post(`${direct.url}/api/auth/login`, { apiKey: "wrong-key-padding" }, { "x-forwarded-for": `10.0.0.${i}` }),
          ),
        );
        expect(spoofed.map((r) => r.status).sort()).toEqual([401, 401, 401, 429, 429]);
      } finally {
        await direct.kill();
        await ownRedis.close();
      }
    });
  });

  describe("sessions", () => {
    it("login issues a new session id and deletes the old one (no fixation)", async () => {
      const first = remember(await login(a.url, API_KEY, fromNewIp()));
      const res = await fetch(`${a.url}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json", cookie: first.cookie, "x-forwarded-for": "192.0.2.10" },
        body: JSON.stringify({ apiKey: API_KEY }),
      });
      const second = remember({ cookie: (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "" });
      expect(sidOf(second)).not.toBe(sidOf(first));
      const probe = redis.client();
      expect(await probe.exists(`tether:sess:${sidOf(first)}`)).toBe(0);
      expect(await probe.exists(`tether:sess:${sidOf(second)}`)).toBe(1);
      expect((await post(`${a.url}/api/auth/ws-token`, undefined, { cookie: first.cookie })).status).toBe(401);
    });

    it("an attacker-chosen session id is never adopted", async () => {
      const planted = "tether.sid=s%3Aattacker-chosen-id.forged-signature";
      const res = await fetch(`${a.url}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json", cookie: planted, "x-forwarded-for": "192.0.2.11" },
        body: JSON.stringify({ apiKey: API_KEY }),
      });
      const issued = res.headers.get("set-cookie") ?? "";
      expect(issued).toMatch(/^tether\.sid=s%3A/);
      expect(issued).not.toContain("attacker-chosen-id");
    });

    it("cookie flags: HttpOnly and SameSite=Lax always, Secure only when the scheme really is HTTPS", async () => {
      const viaHttpsProxy = await fetch(`${a.url}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-proto": "https", "x-forwarded-for": "192.0.2.12" },
        body: JSON.stringify({ apiKey: API_KEY }),
      });
      const secure = viaHttpsProxy.headers.get("set-cookie") ?? "";
      expect(secure).toMatch(/HttpOnly/);
      expect(secure).toMatch(/SameSite=Lax/);
      expect(secure).toMatch(/Secure/);
      const plain = await fetch(`${a.url}/api/auth/login`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": "192.0.2.13" },
        body: JSON.stringify({ apiKey: API_KEY }),
      });
      expect(plain.headers.get("set-cookie") ?? "").not.toMatch(/Secure/);
      const untrusted = await startInstance(env({ TETHER_TRUST_PROXY: "" }));
      try {
        const spoofed = await fetch(`${untrusted.url}/api/auth/login`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-forwarded-proto": "https" },
          body: JSON.stringify({ apiKey: API_KEY }),
        });
        expect(spoofed.headers.get("set-cookie") ?? "").not.toMatch(/Secure/);
      } finally {
        await untrusted.kill();
      }
    });

    it("secret rotation: old cookies work while the old secret is listed, then get a clean 401", async () => {
      const old = remember(await login(a.url, API_KEY, fromNewIp()));
      const rotated = await startInstance(env({ TETHER_SESSION_SECRET: `${NEW_SECRET},${OLD_SECRET}` }));
      const retired = await startInstance(env({ TETHER_SESSION_SECRET: NEW_SECRET }));
      try {
        expect((await post(`${rotated.url}/api/auth/ws-token`, undefined, { cookie: old.cookie })).status).toBe(200);
        expect((await fetch(`${rotated.url}/api/auth/session`, { headers: { cookie: old.cookie } })).status).toBe(200);
        const fresh = remember(await login(rotated.url, API_KEY, fromNewIp()));
        expect((await post(`${retired.url}/api/auth/ws-token`, undefined, { cookie: fresh.cookie })).status).toBe(200);
        const gone = await post(`${retired.url}/api/auth/ws-token`, undefined, { cookie: old.cookie });
        expect(gone.status).toBe(401);
        expect(gone.body).toMatchObject({ error: { code: ErrorCode.SessionRequired } });
        expect((await fetch(`${retired.url}/api/auth/session`, { headers: { cookie: old.cookie } })).status).toBe(401);
      } finally {
        await Promise.all([rotated.kill(), retired.kill()]);
      }
    });

    it("logout destroys the session in Redis; its cookie is worthless afterwards", async () => {
      const session = remember(await login(a.url, API_KEY, fromNewIp()));
      const token = await wsToken(a.url, session);
      secrets.add(token);
      expect((await post(`${b.url}/api/auth/logout`, undefined, { cookie: session.cookie })).status).toBe(204);
      expect(await redis.client().exists(`tether:sess:${sidOf(session)}`)).toBe(0);
      expect((await refusal(a.url, { token })).data?.code).toBe(ErrorCode.SessionExpired);
      expect((await fetch(`${a.url}/api/auth/session`, { headers: { cookie: session.cookie } })).status).toBe(401);
    });
  });

  describe("headers", () => {
    it("the demo page has a CSP that allows only its own scripts, and no x-powered-by", async () => {
      const res = await fetch(`${a.url}/`);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toMatch(/script-src 'self'(;|$)/);
      expect(csp).toMatch(/default-src 'self'/);
      expect(res.headers.get("x-powered-by")).toBeNull();
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    });
  });

  describe("fuzz", () => {
    it("a few thousand random and mutated requests: no 500, no crash", async () => {
      const session = remember(await login(a.url, API_KEY, fromNewIp()));
      let seed = 7;
      const random = () => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)] as T;
      const paths = [
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/ws-token",
        "/api/auth/session",
        "/api/jobs",
        "/api/publish",
        "/readyz",
        "/api/%E0%A4%A",
      ];
      const bodies = [
        '{"apiKey":',
        "[]",
        "null",
        '{"apiKey":{"$ne":1}}',
        '{"steps":1e999,"intervalMs":-1}',
        "\u0000\u0001",
        '{"__proto__":{"x":1}}',
        "a".repeat(20_000),
        '{"steps":3,"intervalMs":1}',
      ];
      const types = [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-16",
        "",
      ];
      const statuses = new Map<number, number>();
      for (let i = 0; i < 2_000; i++) {
        const headers: Record<string, string> = { "x-forwarded-for": `198.18.${i % 250}.${(i >> 8) % 250}` };
        const type = pick(types);
        if (type) headers["content-type"] = type;
        if (random() < 0.6)
          headers.cookie = pick([
            session.cookie,
            "tether.sid=s%3Ax.y",
            "tether.sid=%",
            `tether.sid=${"z".repeat(5000)}`,
          ]);
        if (random() < 0.2) headers.authorization = pick(["Bearer ", "Bearer x", "Basic Zm9v", "Bearer \u00ff"]);
        const bare = await fetch(`${a.url}${pick(paths)}`, {
          method: pick(["GET", "PUT", "DELETE", "OPTIONS"]),
          headers,
        });
        await bare.text();
        expect(bare.status, `status of bare request ${i}`).toBeLessThan(500);
        const withBody = await fetch(`${a.url}${pick(paths)}`, { method: "POST", headers, body: pick(bodies) });
        await withBody.text();
        statuses.set(withBody.status, (statuses.get(withBody.status) ?? 0) + 1);
        expect(withBody.status, `status of request ${i}`).toBeLessThan(500);
      }
      expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
      expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    }, 90_000); // Thousands of requests: slow on a loaded machine, and a timeout here says nothing about the server.
  });

  describe("logs", () => {
    it("no log line of any instance holds a token, the API key, a cookie or a session id", () => {
      const files = readdirSync(LOG_DIR, { recursive: true, encoding: "utf8" }).map((file) => join(LOG_DIR, file));
      const logs = files.filter((file) => statSync(file).isFile()).map((file) => readFileSync(file, "utf8"));
      expect(logs.length).toBeGreaterThan(0);
      for (const secret of secrets) {
        if (secret.length < 16) continue;
        for (const log of logs)
          expect(log.includes(secret), `a log contains a secret (${secret.slice(0, 4)}…)`).toBe(false);
      }
    });
  });
});
