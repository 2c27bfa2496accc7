// The public API shared by both entry points (index.ts for Node, index.browser.ts for browsers).
export type {
  AppEventPayload,
  AppServerEventPayload,
  Ephemeral,
  EventAck,
  EventAckError,
  HistoryEvent,
  JobDonePayload,
  JobFailedPayload,
  JobProgressPayload,
  Offset,
  PresenceData,
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
export { ClientErrorCode, TetherClientError, type TetherErrorCode, UnauthorizedError } from "./errors.js";
export type { LoginCredentials } from "./http.js";
export type { ClientLogger, LogLevel } from "./logger.js";
export { type ClientStats, type SharingMode, STATS_SAMPLES } from "./stats.js";
export type {
  AckResult,
  AnyAppListener,
  AppListeners,
  ClientOwnEvents,
  EmitArgs,
  EmittableArgs,
  EmittableEvent,
  EmittableResult,
  HistoryOptions,
  HistoryPage,
  PassThroughSocketOptions,
  RoomAnyListener,
  RoomJoined,
  RoomServerEvents,
  SubscribedEvent,
  Subscription,
  SubscriptionEnd,
  SubscriptionEvents,
  SubscriptionOptions,
  SubscriptionOwnEvents,
  SubscriptionState,
  TetherClient,
  TetherClientEvents,
  TetherClientOptions,
  TetherSocket,
  TetherState,
  Unsubscribe,
  UntypedEventName,
} from "./types.js";
