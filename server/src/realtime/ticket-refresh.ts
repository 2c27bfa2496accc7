import { ServerEvent } from "@tether/shared";
import type { AuthService } from "../auth/service.js";
import type { TetherServer } from "./types.js";

/**
 * Keeps every connected socket holding a valid resume ticket: one timer for the
 * instance (not one per socket), which pushes each socket a fresh ticket every
 * half of the ticket's life. Tickets are sealed, not stored: no Redis work.
 */
export class TicketRefresh {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly io: TetherServer,
    private readonly auth: AuthService,
    private readonly ttlMs: number,
  ) {}

  start(): void {
    if (this.ttlMs <= 0) return;
    this.timer ??= setInterval(() => this.pushAll(), Math.max(1_000, this.ttlMs / 2)).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private pushAll(): void {
    for (const socket of this.io.of("/").sockets.values()) {
      const ticket = socket.data.sid === undefined ? undefined : this.auth.issueTicket(socket.data.sid);
      if (ticket) socket.emit(ServerEvent.Ticket, ticket);
    }
  }
}
