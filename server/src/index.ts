/**
 * @tether/server: mount Tether on your express app and HTTP server
 * (`createTether`), or run it as a service (`startServer`, `npm start`).
 */

export type {
  Ephemeral,
  EventAck,
  HistoryEvent,
  PresenceData,
  RoomMember,
  StandardSchemaV1,
  TetherEvents,
} from "@tether/shared";
export type { Tether, TetherOptions } from "./api.js";
export type { TrustProxy } from "./auth/client-ip.js";
export { API_KEY_USER, apiKeyLogin } from "./auth/login.js";
export type { HostSessionGrant, LoginCheck, LoginResult, SocketIdentity } from "./auth/service.js";
export { ConfigError, loadConfig, type TetherConfig } from "./config/config.js";
export { DEFAULTS } from "./config/defaults.js";
export type { JobLimits } from "./demo/settings.js";
export type { Capacity } from "./env/capacity.js";
export { ErrorCode, TetherError } from "./errors.js";
export type { GrantFor } from "./http/host-token.js";
export { securityHeaders } from "./http/security.js";
export { createHttpServer, type HttpServerGateOptions, httpServerOptions } from "./http/server-limits.js";
export type { HttpLimits } from "./http/settings.js";
export type { AdmissionLimits } from "./realtime/admission.js";
export type { EventContext, EventHandler } from "./realtime/handlers.js";
export type { RoomsOf } from "./realtime/handshake.js";
export type { HistoryBounds, HistoryOptions, HistoryPage } from "./realtime/history.js";
export type { ConnectionIdentity } from "./realtime/hooks.js";
export {
  type BroadcastTarget,
  IdempotencyConflictError,
  type Publisher,
  type PublishOptions,
  type PublishPolicy,
  type Target,
} from "./realtime/publisher.js";
export type { RoomLimits } from "./realtime/room-bounds.js";
export type { CanJoin } from "./realtime/rooms.js";
export type { TetherServer, TetherSocket } from "./realtime/types.js";
export { type RunningServer, startServer } from "./server.js";
export { createTether } from "./tether.js";
export { createPublisher, type WorkerPublisher } from "./worker-publisher.js";
