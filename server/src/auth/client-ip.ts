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
  const trusted = trustFunction(trust);
  // Without X-Forwarded-For the peer is the client whatever is trusted: proxy-addr would parse
  // nothing to return it, at a few µs per handshake and per connection.
  return (req) =>
    req.headers["x-forwarded-for"] === undefined
      ? (req.socket.remoteAddress ?? "unknown")
      : (proxyAddr(req, trusted) ?? "unknown");
}

/** Tether's `trust proxy` as proxy-addr's trust function (address, hop) → trusted. */
function trustFunction(trust: TrustProxy): (addr: string, hop: number) => boolean {
  if (trust === undefined || trust === false) return () => false;
  if (trust === true) return () => true;
  if (typeof trust === "number") return (_addr, hop) => hop < trust;
  return proxyAddr.compile(trust.split(",").map((part) => part.trim()));
}

/**
 * Whether the request came through a proxy Tether trusts (its peer is one), by
 * Tether's own setting, whatever the host app's express `trust proxy` says.
 */
export function fromTrustedProxy(trust: TrustProxy): (req: IncomingMessage) => boolean {
  const trusted = trustFunction(trust);
  return (req) => {
    const peer = req.socket.remoteAddress;
    return peer !== undefined && trusted(peer, 0);
  };
}
