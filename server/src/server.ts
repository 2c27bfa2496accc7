import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { TetherConfig } from "./config/config.js";
import { demoRoutes } from "./http/demo.js";
import { notFound } from "./http/errors.js";
import { securityHeaders } from "./http/security.js";
import { createTether, type Tether, type TetherOptions } from "./tether.js";

/** A standalone Tether: its own express app and HTTP server. */
export interface RunningServer {
  readonly tether: Tether;
  readonly http: HttpServer;
  /** e.g. `http://127.0.0.1:3000` */
  readonly url: string;
  close(): Promise<void>;
}

/** Starts Tether as a service, as `npm start` does: demo page, contract routes, JSON 404s. */
export async function startServer(
  config: TetherConfig,
  options: Omit<TetherOptions, "config"> = {},
): Promise<RunningServer> {
  const tether = await createTether({ ...options, config });
  const app = express();
  app.disable("x-powered-by");
  app.use(securityHeaders());
  if (config.trustProxy !== undefined) app.set("trust proxy", config.trustProxy);
  app.use(tether.router);
  app.use(demoRoutes());
  app.use(notFound);

  const http = createServer(app);
  tether.attach(http);
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(config.port, config.host, () => resolve());
  });
  const { port } = http.address() as AddressInfo;
  const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  return {
    tether,
    http,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    close: () => tether.close(),
  };
}
