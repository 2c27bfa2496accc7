import { ServerEvent, type TicketPayload } from "@tether/shared";
import type { AuthService } from "../auth/service.js";
import type { TetherServer } from "./types.js";
import type { WelcomeTicket } from "./welcome.js";

/**
 * The one place this instance hands connected sockets their resume tickets:
 * the first in `welcome`, then a fresh one every half of the ticket's life as
 * a `ticket` event, from one timer for the instance (not one per socket).
 * Tickets are sealed, not stored: no Redis work.
 */
export class SocketTickets {
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

  /** The first ticket of a session's socket, as `welcome` carries it (nothing when tickets are off). */
  forWelcome(sid: string): WelcomeTicket {
    const issued = this.issue(sid);
    return issued ? { ticket: issued.ticket, ticketExpiresAt: issued.expiresAt } : {};
  }

  private issue(sid: string | undefined): TicketPayload | undefined {
    return sid === undefined ? undefined : this.auth.issueTicket(sid);
  }

  private pushAll(): void {
    for (const socket of this.io.of("/").sockets.values()) {
      const ticket = this.issue(socket.data.sid);
      if (ticket) socket.emit(ServerEvent.Ticket, ticket);
    }
  }
}
