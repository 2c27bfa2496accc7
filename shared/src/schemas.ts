import { z } from "zod";
import { MAX_REPORTED_AWAY_MS, RESUME_TICKET_PATTERN, WS_TOKEN_PATTERN } from "./defaults.js";
import { isReservedEventName, MAX_EVENT_NAME_LENGTH } from "./event-names.js";
import { OFFSET_PATTERN } from "./offset.js";

/**
 * Schemas for everything that arrives from outside. Inbound data is `unknown`
 * until one of these has parsed it, once, at the boundary.
 */
export const LoginBody = z.object({ apiKey: z.string().min(1).max(512) });

/** Stream offsets: a Redis Stream id and the stream's epoch (see offset.ts). */
export const OffsetSchema = z.string().regex(OFFSET_PATTERN);

/** A sealed resume ticket: base64url, bounded. */
export const ResumeTicketSchema = z.string().regex(RESUME_TICKET_PATTERN);

/** `auth.awayMs`: a finite, non-negative number of ms, capped at {@link MAX_REPORTED_AWAY_MS}. */
export const AwayMsSchema = z
  .number()
  .min(0)
  .transform((ms) => Math.min(ms, MAX_REPORTED_AWAY_MS));

export const HandshakeAuthSchema = z.object({
  token: z.string().regex(WS_TOKEN_PATTERN),
  ticket: ResumeTicketSchema.optional(),
  offset: OffsetSchema.optional(),
  rooms: z.record(z.string().max(256), OffsetSchema).optional(),
  awayMs: AwayMsSchema.optional(),
});

/** A room name an app may publish to. */
export const RoomNameSchema = z.string().min(1).max(256);

export const PublishBody = z.object({
  target: z.union([
    z.object({ user: z.string().min(1).max(256) }).strict(),
    z.object({ room: RoomNameSchema }).strict(),
    // Ephemeral events only (see `ephemeral`): everyone, or a room but one socket (a user too: above).
    z.object({ everyone: z.literal(true) }).strict(),
    z.object({ room: RoomNameSchema, except: z.string().min(1).max(256) }).strict(),
  ]),
  /** Not stored, no offset, best effort (see the server's `PublishOptions.ephemeral`). */
  ephemeral: z.boolean().optional(),
  event: z
    .string()
    .min(1)
    .max(MAX_EVENT_NAME_LENGTH)
    .refine((name) => !isReservedEventName(name), "reserved event name"),
  data: z.record(z.string(), z.unknown()),
});

/**
 * A member's presence data: a JSON object (its size and depth are bounded by the
 * server: `TETHER_MAX_PRESENCE_BYTES`, and the inbound payload depth).
 */
export const PresenceDataSchema = z.record(z.string().max(256), z.unknown());

/** The most events one `history` request may ask for, whatever a server is configured with. */
export const MAX_HISTORY_LIMIT = 1_000;

/** `history`'s request: a room (or the user's own stream), a limit, an offset to page back from. */
export const HistoryRequestSchema = z
  .object({
    room: RoomNameSchema.optional(),
    limit: z.number().int().min(1).max(MAX_HISTORY_LIMIT).optional(),
    before: OffsetSchema.optional(),
  })
  .strict();

/** Arguments (without the acknowledgement) of every event a client may send; anything else is dropped. */
export const ClientEventSchemas = {
  echo: z.tuple([z.unknown()]),
  "room:join": z.tuple([
    z
      .object({ room: RoomNameSchema, offset: OffsetSchema.optional(), presence: PresenceDataSchema.optional() })
      .strict(),
  ]),
  "room:leave": z.tuple([z.object({ room: RoomNameSchema }).strict()]),
  "room:members": z.tuple([z.object({ room: RoomNameSchema }).strict()]),
  history: z.tuple([HistoryRequestSchema]),
  "presence:set": z.tuple([z.object({ room: RoomNameSchema, data: PresenceDataSchema }).strict()]),
} as const;
