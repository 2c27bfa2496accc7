import { ClientEvent, ErrorCode, type HistoryAck, type HistoryRequest } from "@tether/shared";
import { toTetherError } from "../errors.js";
import type { HistoryStore } from "../store/types.js";
import { type HistoryBounds, readHistory } from "./history.js";
import { type Rooms, refusal } from "./rooms.js";
import { roomStream, userStream } from "./streams.js";
import type { BuiltinListeners, TetherSocket } from "./types.js";

/**
 * `history` (validated and rate-limited by the inbound guard before it gets here): the
 * user's own stream, or a room this socket is in (FORBIDDEN otherwise), read back from
 * the newest or from `before`. One listener shared by every socket, called by the guard.
 */
export function historyEvents(rooms: Rooms, store: HistoryStore, bounds: HistoryBounds): BuiltinListeners {
  function onHistory(this: TetherSocket, request: HistoryRequest, ack?: unknown) {
    if (typeof ack !== "function") return;
    const reply = ack as (result: HistoryAck) => void;
    const { room } = request;
    if (room !== undefined && !rooms.isIn(this, room)) {
      reply(refusal(ErrorCode.Forbidden, "Not in this room."));
      return;
    }
    const stream = room === undefined ? userStream(this.data.userId) : roomStream(room);
    readHistory(store, stream, request, bounds).then(
      (page) => reply({ ok: true, ...page }),
      (err: unknown) => {
        // A store outage is UNAVAILABLE; anything unexpected, INTERNAL with its generic message.
        const error = toTetherError(err);
        reply(refusal(error.code, error.message));
      },
    );
  }
  return { [ClientEvent.History]: onHistory } as BuiltinListeners;
}
