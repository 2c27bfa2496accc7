import { presenceRoom } from "./room-presence.js";
import { userStream } from "./streams.js";
import type { TetherServer } from "./types.js";

/**
 * Where an ephemeral event goes: every connected socket of one user, a room's sockets
 * (optionally all but one socket: the sender's, `EventContext.socketId`), or every connected
 * socket of the fleet.
 */
export type BroadcastTarget = { user: string } | { room: string; except?: string } | { everyone: true };

/** Sends an ephemeral event now, on every instance; best effort (see `PublishOptions.ephemeral`). */
export type EphemeralSink = (target: BroadcastTarget, event: string, data: object) => void;

/** The server-side event (instance to instance, never to a client) that carries a user's ephemeral event. */
export const USER_EPHEMERAL = "tether:user-ephemeral";

/** A user's ephemeral event between instances. */
interface UserEphemeral {
  user: string;
  event: string;
  data: object;
}

/** This instance's connected sockets of a stream (a user's: `user:<id>`), by socket id. */
export type LocalSocketsOf = (stream: string) => string[];

/** The event map types Tether's own events; an app's are any publishable name. */
interface Emitter {
  emit(event: string, payload: object): void;
  to(room: string | string[]): { except(id: string): { emit(event: string, payload: object): void } } & {
    emit(event: string, payload: object): void;
  };
  local: { to(rooms: string[]): { emit(event: string, payload: object): void } };
  on(event: string, listener: (message: unknown) => void): void;
  serverSideEmit(event: string, message: object): void;
}

const isUserEphemeral = (m: unknown): m is UserEphemeral => {
  if (m === null || typeof m !== "object") return false;
  const { user, event, data } = m as Record<string, unknown>;
  return typeof user === "string" && typeof event === "string" && data !== null && typeof data === "object";
};

/**
 * Ephemeral events through the Socket.IO adapter: a room's through its presence room
 * (every socket in the room joined it), with `room` added as stored events have it;
 * everyone's to the whole namespace; a user's as a server-side emit that every instance
 * hears on the adapter's namespace channel (as it hears `everyone`), each sending it to its
 * own sockets of that user (`localSocketsOf`: no Socket.IO room per user, so a connect
 * still costs the adapter no subscription). No stream, no offset, nothing replayed.
 *
 * @param clustered whether other instances share the adapter (Redis): only then is a user's event sent to them.
 */
export function ephemeralSink(io: TetherServer, localSocketsOf: LocalSocketsOf, clustered: boolean): EphemeralSink {
  const emitter = io as unknown as Emitter;
  const toLocalUser = (user: string, event: string, data: object) => {
    const ids = localSocketsOf(userStream(user));
    if (ids.length > 0) emitter.local.to(ids).emit(event, data);
  };
  // From the other instances (an instance of an earlier release has no listener: it drops it, best effort).
  emitter.on(USER_EPHEMERAL, (message) => {
    if (isUserEphemeral(message)) toLocalUser(message.user, message.event, message.data);
  });
  return (target, event, data) => {
    if ("everyone" in target) return void emitter.emit(event, data);
    if ("user" in target) {
      toLocalUser(target.user, event, data);
      if (clustered) emitter.serverSideEmit(USER_EPHEMERAL, { user: target.user, event, data } satisfies UserEphemeral);
      return;
    }
    const to = emitter.to(presenceRoom(target.room));
    const payload = { ...data, room: target.room };
    if (target.except === undefined) to.emit(event, payload);
    else to.except(target.except).emit(event, payload);
  };
}
