import { ErrorCode, type HandshakeAuth, ServerEvent, type TicketPayload } from "@tether/shared";
import { ClientErrorCode, TetherClientError } from "../errors.js";
import type { TetherHttp } from "../http.js";
import { type OffsetBook, USER_STREAM } from "../offset-book.js";

/** Where a connection's credentials come from. */
export interface CredentialSource {
  http: TetherHttp;
  /** The host's token source; undefined: `POST /api/auth/ws-token`. */
  getToken: (() => Promise<{ token: string; expiresAt?: number }>) | undefined;
  /** The host's token route, absolute (never with `getToken`); undefined: the above. */
  tokenUrl: string | undefined;
  /** Present the resume tickets the server pushes instead of fetching a token. */
  resumeTickets: boolean;
  /** Without a ticket, try the session cookie the handshake carries (`auth.cookie`) before fetching a token. */
  cookieHandshake: boolean;
}

/** What a handshake presents: a fresh token, the last resume ticket, or the session cookie its request carries. */
export type HandshakeCredential = { token: string } | { ticket: string } | { cookie: true };

/**
 * The resume ticket an incoming server event carries, if any. The wire brings one
 * two ways, `welcome`'s `ticket` fields and a pushed `ticket` event: both are read here.
 */
export function ticketIn(event: string, payload: unknown): TicketPayload | undefined {
  if (typeof payload !== "object" || payload === null) return undefined;
  const fields = payload as { ticket?: unknown; expiresAt?: unknown; ticketExpiresAt?: unknown };
  const expiresAt =
    event === ServerEvent.Ticket
      ? fields.expiresAt
      : event === ServerEvent.Welcome
        ? fields.ticketExpiresAt
        : undefined;
  if (typeof fields.ticket !== "string" || typeof expiresAt !== "number") return undefined;
  return { ticket: fields.ticket, expiresAt };
}

/**
 * What a connection presents at each handshake: the resume ticket the server pushed
 * last (once: tickets are single use), else the session cookie the handshake carries
 * (until a cookie handshake is refused), else a fresh single-use token. Never a
 * ticket or a token twice.
 */
export class Credentials {
  /** The resume ticket the server pushed last (single use: dropped once presented). */
  private ticket: TicketPayload | undefined;
  /** The ticket this attempt presented, until its answer (see `keepUnspent`). */
  private presentedTicket: TicketPayload | undefined;
  /** What the attempt in flight presented instead of a token: if it is refused, the next attempt fetches a token at once. */
  private presented: "ticket" | "cookie" | undefined;
  /** A cookie handshake was refused (no cookie reaches the server: another site, a cookie kept elsewhere): tokens from now on. */
  private cookieRefused = false;

  constructor(private readonly source: CredentialSource) {}

  /** Keeps a resume ticket for the next handshake: the one place a ticket is adopted. */
  adopt(ticket: TicketPayload): void {
    this.ticket = ticket;
  }

  /** Forgets the ticket, and a refused cookie (the client stopped: a later connect starts afresh). */
  drop(): void {
    this.ticket = undefined;
    this.presentedTicket = undefined;
    this.cookieRefused = false;
  }

  /**
   * What to present at this handshake without an HTTP request: the kept ticket if it is
   * usable and not expired (used up either way), else the session cookie if it may be
   * tried; undefined: fetch a token.
   */
  take(): { ticket: string } | { cookie: true } | undefined {
    const ticket = this.ticket;
    this.ticket = undefined;
    this.presented = undefined;
    this.presentedTicket = undefined;
    if (ticket !== undefined && this.source.resumeTickets && ticket.expiresAt > Date.now()) {
      this.presented = "ticket";
      this.presentedTicket = ticket;
      return { ticket: ticket.ticket };
    }
    if (this.source.cookieHandshake && !this.cookieRefused) {
      this.presented = "cookie";
      return { cookie: true };
    }
    return undefined;
  }

  /**
   * A ticket turned away with `UNAVAILABLE` (a draining, busy or full instance, or the store
   * out of reach) was refused before it was spent: it is kept for the next attempt, which
   * then needs no token request (in a storm, one HTTP exchange less per refused client,
   * on the instances least able to take it). Unless a newer ticket came meanwhile. Should
   * the store have spent it after all, that attempt is refused `TOKEN_INVALID` and a token
   * is fetched at once, as for any used ticket.
   */
  keepUnspent(error: TetherClientError): void {
    const ticket = this.presentedTicket;
    if (this.presented !== "ticket" || ticket === undefined || error.code !== ErrorCode.Unavailable) return;
    this.ticket ??= ticket;
  }

  /**
   * Whether a refused handshake was a refused ticket (used, expired, from before a
   * secret rotation) or cookie (none usable came with it): then the next attempt
   * fetches a token at once, with no backoff. A refused cookie is not tried again.
   */
  refusedWithoutToken(error: TetherClientError): boolean {
    const presented = this.presented;
    if (presented === undefined || error.code !== ErrorCode.TokenInvalid) return false;
    this.presented = undefined;
    if (presented === "cookie") this.cookieRefused = true;
    return true;
  }

  /**
   * A fresh token: from the host's `getToken` or `tokenUrl` when given, else from Tether's
   * token route. Rejects with a TetherClientError.
   */
  async fetchToken(): Promise<{ token: string }> {
    const { getToken, tokenUrl, http } = this.source;
    try {
      if (tokenUrl !== undefined) return await http.hostToken(tokenUrl);
      if (getToken === undefined) return await http.wsToken();
      const minted: unknown = await getToken();
      const token = typeof minted === "object" && minted !== null ? (minted as { token?: unknown }).token : undefined;
      if (typeof token !== "string" || token === "")
        throw new TetherClientError({
          code: ClientErrorCode.BadResponse,
          message: "getToken gave no token",
          retryable: true,
        });
      return { token };
    } catch (err) {
      throw asClientError(err);
    }
  }
}

/** `{ token | ticket | cookie, offset?, rooms?, awayMs? }`: where each stream should resume, and how long we were away. */
export function handshakeAuth(
  credential: HandshakeCredential,
  offsets: OffsetBook,
  awayMs: number | undefined,
): HandshakeAuth {
  // A reconnect that missed nothing gets its recoveries inside `welcome` (one frame, not one per stream).
  const auth: HandshakeAuth = { ...credential, recoveryInWelcome: true };
  const offset = offsets.get(USER_STREAM);
  if (offset !== undefined) auth.offset = offset;
  const rooms = offsets.rooms();
  if (Object.keys(rooms).length > 0) auth.rooms = rooms;
  if (awayMs !== undefined) auth.awayMs = awayMs;
  return auth;
}

function asClientError(err: unknown): TetherClientError {
  if (err instanceof TetherClientError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // A host's getToken says its session is gone with a 401 (see TetherClientOptions.getToken).
  if (typeof err === "object" && err !== null && (err as { status?: unknown }).status === 401)
    return new TetherClientError({ code: ErrorCode.SessionRequired, message, status: 401, cause: err });
  return new TetherClientError({ code: ClientErrorCode.Network, message, cause: err });
}
