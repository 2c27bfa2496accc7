import { ErrorCode, type Offset, type TicketPayload } from "@tether/shared";
import { TetherClientError, type TetherErrorCode } from "../errors.js";
import type { ConnectionStats } from "../stats.js";
import type { TetherClientOptions, TetherState } from "../types.js";

/**
 * The messages between tabs and the hub that owns the shared connection (in a
 * SharedWorker, or in the leader tab). Everything here crosses `postMessage`, so
 * it is plain data: no functions, no class instances.
 */

/** A tab's id, random per page load. */
export type TabId = string;

/** What a tab can ask of the hub, with the arguments of the client method of the same name. */
export type RequestOp =
  | "emitWithAck"
  | "emit"
  | "echo"
  | "join"
  | "leave"
  | "members"
  | "history"
  | "setPresence"
  | "reconnectNow"
  | "wake";

/** The options a hub in a worker builds its connection from: the cloneable ones, with the resolved origin. */
export type HubOptions = Omit<
  TetherClientOptions,
  "url" | "fetch" | "getToken" | "tokenUrl" | "random" | "share" | "sharedWorkerUrl" | "persistOffsets" | "logger"
> & {
  url: string;
  /** The app's `tokenUrl`, absolute (resolved against the page): the worker fetches its tokens there. */
  tokenUrl?: string;
  /** The app gave `getToken` or a custom `fetch`: the worker asks a tab for each token. */
  tokenFromTabs?: boolean;
};

/** The id of a request whose answer nobody waits for (`emit`, `wake`, `reconnectNow`): the hub sends none. */
export const NO_REPLY = 0;

/** Tab → hub. */
export type TabMessage =
  | {
      kind: "attach";
      tab: TabId;
      /** The tab called `connect()` and wants the connection open. */
      wants: boolean;
      /** The tab's last offsets (from before a reload, or from an earlier hub): the hub replays from the oldest. */
      offsets: Record<string, Offset>;
      /** Rooms the tab joined. */
      rooms: string[];
      /** For a hub in a worker, which has no options of its own. */
      options?: HubOptions;
    }
  | { kind: "connect" | "disconnect" | "detach"; tab: TabId }
  /** A tab's answer to the hub's `token-request`: a token from the app's token source, or its error. */
  | { kind: "token"; tab: TabId; id: number; token?: string; error?: WireError }
  | { kind: "request"; tab: TabId; id: number; op: RequestOp; args: unknown[] };

/** Hub → tabs; `to` undefined means every tab. */
export type HubMessage =
  | { kind: "hello"; hub: string }
  | {
      kind: "status";
      hub: string;
      to?: TabId[];
      state: TetherState;
      /** The connection stopped by itself (session gone, origin refused): tabs stop wanting it. */
      stopped: boolean;
      stats: ConnectionStats;
      tabs: number;
    }
  | { kind: "event"; hub: string; to?: TabId[]; event: string; args: unknown[] }
  | { kind: "error"; hub: string; error: WireError }
  | { kind: "reply"; hub: string; to: TabId[]; id: number; value?: unknown; error?: WireError }
  /** The worker asks one tab for a token (the app's `getToken` or custom `fetch` run in the tab). */
  | { kind: "token-request"; hub: string; to: TabId[]; id: number }
  /** The latest resume ticket, so that a tab taking over as leader reconnects without an HTTP request. */
  | { kind: "ticket"; hub: string; ticket: TicketPayload };

/** A {@link TetherClientError} as plain data (structured clone keeps only an Error's message). */
export interface WireError {
  code: TetherErrorCode;
  message: string;
  status?: number | undefined;
  retryable: boolean;
  retryAfterMs?: number | undefined;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof TetherClientError)
    return {
      code: err.code,
      message: err.message,
      status: err.status,
      retryable: err.retryable,
      retryAfterMs: err.retryAfterMs,
    };
  return { code: ErrorCode.Internal, message: err instanceof Error ? err.message : String(err), retryable: false };
}

export function fromWireError(wire: WireError): TetherClientError {
  return new TetherClientError(wire);
}

/** A random id for a tab or a hub. */
export function randomId(): string {
  return typeof crypto?.randomUUID === "function" ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}
