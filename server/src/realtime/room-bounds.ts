import { ErrorCode } from "@tether/shared";

/** How many distinct rooms with history one user (on one instance) and one instance may hold; 0: no bound. */
export interface RoomLimits {
  perUser: number;
  perInstance: number;
}

/** The defaults of `TETHER_MAX_ROOMS_PER_USER` and `TETHER_MAX_ROOMS_PER_INSTANCE`. */
export const ROOM_LIMIT_DEFAULTS: RoomLimits = { perUser: 100, perInstance: 100_000 };

/** Why a room may not be taken: the code and message of a `room:join` refusal. */
export interface BoundRefusal {
  code: ErrorCode;
  message: string;
}

/**
 * This instance's rooms, counted for their bounds: per user, the distinct rooms
 * its sockets hold (a room once however many of the user's sockets, from
 * however many sessions, are in it), and the distinct rooms of the instance.
 * A room is held from the moment a join is let through (before `canJoin`
 * answers, so concurrent joins cannot all pass) until its socket leaves it.
 * Every room held costs the instance a stream subscription, an adapter
 * channel and presence keys: this is what keeps them bounded.
 */
export class RoomBounds {
  /** user → room → this user's sockets holding it. */
  private readonly users = new Map<string, Map<string, number>>();
  /** room → sockets holding it. */
  private readonly rooms = new Map<string, number>();

  constructor(private readonly limits: RoomLimits) {}

  /** Distinct rooms held on this instance. */
  get size(): number {
    return this.rooms.size;
  }

  /**
   * Why `userId` may not take `room` now, or undefined. Past the user's bound:
   * INVALID_INPUT (not retryable: leave a room first, as past the socket's).
   * Past the instance's: UNAVAILABLE (retryable: another instance, or later).
   */
  refusal(userId: string, room: string): BoundRefusal | undefined {
    const mine = this.users.get(userId);
    if (mine?.has(room)) return undefined;
    const { perUser, perInstance } = this.limits;
    if (perUser > 0 && (mine?.size ?? 0) >= perUser)
      return { code: ErrorCode.InvalidInput, message: `At most ${perUser} rooms per user.` };
    if (perInstance > 0 && !this.rooms.has(room) && this.rooms.size >= perInstance)
      return { code: ErrorCode.Unavailable, message: "This instance holds as many rooms as it may." };
    return undefined;
  }

  /** Takes `room` for one of `userId`'s sockets (after `refusal` said nothing). */
  take(userId: string, room: string): void {
    const mine = this.users.get(userId) ?? new Map<string, number>();
    mine.set(room, (mine.get(room) ?? 0) + 1);
    this.users.set(userId, mine);
    this.rooms.set(room, (this.rooms.get(room) ?? 0) + 1);
  }

  /** Gives back what `take` took. */
  release(userId: string, room: string): void {
    const mine = this.users.get(userId);
    const n = mine?.get(room);
    if (!mine || n === undefined) return;
    if (n > 1) mine.set(room, n - 1);
    else mine.delete(room);
    if (mine.size === 0) this.users.delete(userId);
    const m = this.rooms.get(room) ?? 0;
    if (m > 1) this.rooms.set(room, m - 1);
    else this.rooms.delete(room);
  }

  /**
   * Splits `rooms` (in priority order) into those that fit the bounds for one
   * socket of `userId` now and those that do not. Takes nothing.
   */
  split(userId: string, rooms: Iterable<string>): [string[], string[]] {
    const mine = this.users.get(userId);
    let userCount = mine?.size ?? 0;
    let instanceCount = this.rooms.size;
    const within: string[] = [];
    const beyond: string[] = [];
    const { perUser, perInstance } = this.limits;
    for (const room of rooms) {
      const userHas = mine?.has(room) ?? false;
      const instanceHas = this.rooms.has(room);
      const fits =
        (userHas || perUser === 0 || userCount < perUser) &&
        (instanceHas || perInstance === 0 || instanceCount < perInstance);
      if (!fits) {
        beyond.push(room);
        continue;
      }
      within.push(room);
      if (!userHas) userCount += 1;
      if (!instanceHas) instanceCount += 1;
    }
    return [within, beyond];
  }
}
