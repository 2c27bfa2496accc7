/** The example's event map, shared by the server (`createTether<ChatEvents>`) and the app (`createTetherHooks<ChatEvents>`). */
export interface ChatEvents {
  server: {
    /** A message in a room: its text and who wrote it. */
    "chat:message": { text: string; by: string };
  };
  client: {
    /** Says something in the lobby. */
    "chat:send": { payload: { text: string }; result: { ok: true } };
  };
}

/** The one room of the example. */
export const LOBBY = "lobby";
/** Longest message the server takes. */
export const MAX_TEXT = 500;
/** What a user name looks like (the example's login takes any such name). */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
