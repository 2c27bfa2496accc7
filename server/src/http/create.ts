import { Route } from "@tether/shared";
import { type ErrorRequestHandler, type RequestHandler, Router } from "express";
import type { Logger } from "pino";
import type { Auth } from "../auth/create.js";
import type { LoginCheck } from "../auth/service.js";
import type { Metrics } from "../observability/metrics.js";
import type { Publisher } from "../realtime/publisher.js";
import { errorHandler } from "./errors.js";
import { historyRoutes, type ReadHistory } from "./history.js";
import { publishRoutes } from "./publish.js";
import { authRoutes, underBasePath } from "./routes.js";
import { corsForAllowlist } from "./security.js";
import { HTTP_DEFAULTS, type HttpConfig } from "./settings.js";
import { type NodeHandler, tokenHandler } from "./token.js";
import { workerScriptRoute } from "./worker-script.js";

/** What the routes work with. */
export interface HttpDeps {
  auth: Auth;
  /** Who logs in at `POST /api/auth/login`; undefined: no login route. */
  login: LoginCheck | undefined;
  publisher: Publisher;
  /** `GET /api/history`'s read (behind the publish key, like the publish route). */
  readHistory: ReadHistory;
  metrics: Metrics;
  logger: Logger;
  /** Tells every instance that a session ended (its sockets get `session:ended`). */
  onSessionEnded(sid: string): Promise<void>;
}

/** The routes' settings: where they are mounted, and the publish route's key (unset: off). */
export type HttpSettings = Pick<HttpConfig, "basePath" | "publishKey">;

/** Tether's HTTP routes, and the pieces other routers share. */
export interface HttpRoutes {
  /** Login, logout, session, ws-token and the SharedWorker script, under the base path. */
  readonly authRouter: Router;
  /** `POST <base>/api/publish` and `GET <base>/api/history`. */
  readonly publishRouter: Router;
  /** `POST /api/auth/ws-token` as a plain Node handler (a server may answer it before express). */
  readonly tokenRoute: NodeHandler;
  /** CORS for the allowlisted origins; undefined in same-origin mode. */
  readonly cors: RequestHandler | undefined;
  /** Tether's error handler: `{"error":{"code","message"}}` on Tether's own paths. */
  readonly errors: ErrorRequestHandler;
}

export function createHttpRoutes(deps: HttpDeps, settings: HttpSettings): HttpRoutes {
  const { auth, logger } = deps;
  const tokenRoute = tokenHandler({ auth: auth.service, origins: auth.origins, metrics: deps.metrics, logger });
  const cors = corsForAllowlist(auth.origins);
  const errors = errorHandler(logger);
  const authRouter = Router().use(
    authRoutes({
      auth: auth.service,
      login: deps.login,
      origins: auth.origins,
      maxBodyBytes: HTTP_DEFAULTS.maxBodyBytes,
      tokenRoute,
      onSessionEnded: deps.onSessionEnded,
      cors,
      errors,
    }),
    workerScriptRoute(),
  );
  const publishRouter = Router();
  const paths = [Route.Publish, Route.History];
  if (cors) publishRouter.use(paths, cors);
  publishRouter.use(publishRoutes(settings.publishKey, () => deps.publisher, HTTP_DEFAULTS.maxBodyBytes));
  publishRouter.use(historyRoutes(settings.publishKey, deps.readHistory));
  publishRouter.use(paths, errors);
  return {
    authRouter: underBasePath(settings.basePath, authRouter),
    publishRouter: underBasePath(settings.basePath, publishRouter),
    tokenRoute,
    cors,
    errors,
  };
}
