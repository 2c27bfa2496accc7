// The public API shared by both entry points (index.ts for Node, index.browser.ts for browsers).
export type {
  AppEventPayload,
  EventAck,
  EventAckError,
  JobDonePayload,
  JobFailedPayload,
  JobProgressPayload,
  Offset,
  PresencePayload,
  RecoveryFailure,
  RecoveryPayload,
  RoomMember,
  RoomRevokedPayload,
  SessionEndedPayload,
  TetherEvents,
  WelcomePayload,
} from "@tether/shared";
export { ErrorCode, SessionEndReason } from "@tether/shared";
export type { FetchLike } from "./cookies.js";
export { ClientErrorCode, TetherClientError, type TetherErrorCode } from "./errors.js";
export type { LoginCredentials } from "./http.js";
export { type ClientStats, type SharingMode, STATS_SAMPLES } from "./stats.js";
export type {
  AckResult,
  AppListeners,
  ClientOwnEvents,
  EmitArgs,
  EmittableArgs,
  EmittableEvent,
  EmittableResult,
  PassThroughSocketOptions,
  RoomJoined,
  TetherClient,
  TetherClientEvents,
  TetherClientOptions,
  TetherSocket,
  TetherState,
} from "./types.js";
