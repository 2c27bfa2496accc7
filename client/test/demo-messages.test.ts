import { ErrorCode, type RecoveryFailure, SessionEndReason } from "@tether/shared";
import { describe, expect, it } from "vitest";
import {
  ERROR_MESSAGES,
  messageFor,
  RECOVERY_FAILURE_MESSAGES,
  SESSION_END_MESSAGES,
  STATE_LABELS,
  sessionEndMessage,
} from "../demo/messages.js";
import { ClientErrorCode } from "../src/errors.js";
import type { TetherState } from "../src/types.js";

const ALL_CODES = [...Object.values(ErrorCode), ...Object.values(ClientErrorCode)];
/** Every recovery failure reason: a reason added to the type and not here fails to compile. */
const RECOVERY_FAILURES: Record<RecoveryFailure, true> = { trimmed: true, reset: true, invalid: true };
const STATES: Record<TetherState, true> = {
  connecting: true,
  connected: true,
  reconnecting: true,
  unauthenticated: true,
  closed: true,
};

/** A sentence for people: not empty, not a code, no code inside it. */
function expectHuman(text: string | undefined): void {
  expect(text).toEqual(expect.any(String));
  expect(text?.trim()).not.toBe("");
  expect(text).not.toMatch(/\b[A-Z]+(_[A-Z]+)+\b/);
}

describe("the demo page's messages (client/demo/messages.js)", () => {
  it.each(ALL_CODES)("%s has a message of its own", (code) => {
    expect(Object.hasOwn(ERROR_MESSAGES, code)).toBe(true);
    expectHuman(ERROR_MESSAGES[code]);
    expect(messageFor({ code })).toBe(ERROR_MESSAGES[code]);
  });

  it("has no message for a code that does not exist (a renamed code would leave one behind)", () => {
    expect(Object.keys(ERROR_MESSAGES).sort()).toEqual([...ALL_CODES].sort());
  });

  it("no two codes share a sentence", () => {
    const sentences = Object.values(ERROR_MESSAGES);
    expect(new Set(sentences).size).toBe(sentences.length);
  });

  it("an unknown code or a thrown non-error still gets a sentence, never the raw value", () => {
    for (const value of [{ code: "SOMETHING_NEW" }, { code: 42 }, new TypeError("boom"), null, undefined]) {
      expectHuman(messageFor(value));
    }
  });

  it.each(Object.values(SessionEndReason))("session:ended %s has a message", (reason) => {
    expectHuman(SESSION_END_MESSAGES[reason]);
    expect(sessionEndMessage(reason)).toBe(SESSION_END_MESSAGES[reason]);
  });

  it.each(Object.keys(RECOVERY_FAILURES))("recovery failure %s has words", (reason) => {
    expectHuman(RECOVERY_FAILURE_MESSAGES[reason]);
  });

  it.each(Object.keys(STATES))("state %s has a label", (state) => {
    expectHuman(STATE_LABELS[state]);
  });
});
