import type { IncomingMessage } from "node:http";
import proxyAddr from "proxy-addr";

/** express's `trust proxy` setting, as config gives it. */
export type TrustProxy = boolean | number | string | undefined;

/**
 * The client's IP as express computes `req.ip`, for any IncomingMessage (the
 * Socket.IO handshake too): `X-Forwarded-For` counts only from trusted proxies,
 * so a spoofed header from outside is ignored.
 */
export function clientIpResolver(trust: TrustProxy): (req: IncomingMessage) => string {
  const trusted =
    trust === undefined || trust === false
      ? () => false
      : trust === true
        ? () => true
        : typeof trust === "number"
          ? (_addr: string, hop: number) => hop < trust
          : proxyAddr.compile(trust.split(",").map((part) => part.trim()));
  return (req) => proxyAddr(req, trusted) ?? "unknown";
}
