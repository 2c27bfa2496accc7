// The public API shared by both entry points (index.ts for Node, index.browser.ts for browsers).
export type {
  JobDonePayload,
  JobProgressPayload,
  Offset,
  PresencePayload,
  RecoveryPayload,
  RoomMember,
  RoomRevokedPayload,
  SessionEndedPayload,
  WelcomePayload,
} from "@tether/shared";
export { ErrorCode, SessionEndReason } from "@tether/shared";
export type { FetchLike } from "./cookies.js";
export { ClientErrorCode, TetherClientError, type TetherErrorCode } from "./errors.js";
export type {
  AckResult,
  ClientOwnEvents,
  EmitArgs,
  PassThroughSocketOptions,
  RoomJoined,
  TetherClient,
  TetherClientEvents,
  TetherClientOptions,
  TetherSocket,
  TetherState,
} from "./types.js";
