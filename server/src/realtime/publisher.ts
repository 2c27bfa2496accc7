import type { Offset, ServerToClientEvents } from "@tether/shared";
import { userRoom } from "../auth/keys.js";
import type { TetherServer } from "./types.js";

/** Who receives a published event. */
export type Target = { user: string } | { room: string };

type PayloadOf<E extends keyof ServerToClientEvents> = Omit<Parameters<ServerToClientEvents[E]>[0], "offset">;

/** Publishes events to users or rooms; every event gets an offset. */
export interface Publisher {
  publish<E extends keyof ServerToClientEvents>(target: Target, event: E, data: PayloadOf<E>): Promise<Offset>;
  /** The target's current offset: what a client that has seen everything would send. */
  currentOffset(target: Target): Promise<Offset>;
}

/** Live fan-out only: offsets are ordered ids, but nothing is kept for replay. */
export class LivePublisher implements Publisher {
  private sequence = 0;
  private last = "0-0";

  constructor(private readonly io: TetherServer) {}

  async publish<E extends keyof ServerToClientEvents>(target: Target, event: E, data: PayloadOf<E>): Promise<Offset> {
    this.sequence += 1;
    this.last = `${Date.now()}-${this.sequence}`;
    const room = "user" in target ? userRoom(target.user) : target.room;
    // The payload's type was checked by this method's signature.
    const emit = this.io.to(room).emit as (event: string, payload: unknown) => boolean;
    emit.call(this.io.to(room), event, { ...data, offset: this.last });
    return this.last;
  }

  async currentOffset(_target: Target): Promise<Offset> {
    return this.last;
  }
}
