import { request } from "node:http";
import { request as tlsRequest } from "node:https";

let last = 1;

/**
 * A loopback address of its own (127.0.0.2, 127.0.0.3, …) for one simulated
 * client: real users each have their own, and the per-address rate limits are
 * on in every suite. Linux routes all of 127.0.0.0/8 to loopback.
 */
export function nextClientAddress(): string {
  last += 1;
  if (last >= 254 * 254) throw new Error("out of loopback client addresses");
  return `127.0.${Math.floor(last / 254)}.${(last % 254) + 1}`;
}

/** Headers as `Headers`, keeping every Set-Cookie line (fetch-cookie reads them all). */
function toHeaders(raw: string[]): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
  return headers;
}

/**
 * A `fetch` whose connections leave from `localAddress` (node's own fetch cannot
 * bind one). Enough for the JSON routes: string bodies, abort signals, no redirects.
 * `https:` URLs trust `ca` (PEM) besides the usual roots, e.g. a test's self-signed certificate.
 */
export function fetchFrom(localAddress: string, { ca }: { ca?: string } = {}): typeof fetch {
  const from = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
    new Promise((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((value, name) => {
        headers[name] = value;
      });
      const body = typeof init.body === "string" ? init.body : undefined;
      if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
      const send = url.protocol === "https:" ? tlsRequest : request;
      const req = send(
        {
          ...(ca === undefined ? {} : { ca }),
          host: url.hostname,
          port: url.port,
          path: `${url.pathname}${url.search}`,
          method: init.method ?? "GET",
          headers,
          localAddress,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () => {
            const status = res.statusCode ?? 0;
            const empty = status === 204 || status === 304;
            const response = new Response(empty ? null : Buffer.concat(chunks), {
              status,
              statusText: res.statusMessage,
              headers: toHeaders(res.rawHeaders),
            });
            // A constructed Response has no url; cookie jars need it.
            resolve(Object.defineProperty(response, "url", { value: url.href }));
          });
        },
      );
      const signal = init.signal;
      if (signal) {
        if (signal.aborted) return void req.destroy(signal.reason as Error);
        signal.addEventListener("abort", () => req.destroy(signal.reason as Error), { once: true });
      }
      req.on("error", reject);
      req.end(body);
    });
  return from as typeof fetch;
}
