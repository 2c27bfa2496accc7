/**
 * How a variable's text becomes a value: the field parsers every module's settings
 * slice (`<module>/settings.ts`) is built from, each with the message that names what
 * was expected. Nothing here reads the environment: `loadConfig` does, once.
 */
import bytes from "bytes";
import { z } from "zod";
import { parseDuration } from "./duration.js";

/** The parsed values of a settings slice (`{ VARIABLE: parser }`). */
export type EnvOf<Slice extends z.ZodRawShape> = z.output<z.ZodObject<Slice>>;

/**
 * An optional variable's text, trimmed, read by `parse`; unset or blank: `fallback`.
 * A text `parse` cannot read (undefined) is refused with "expected …".
 */
export const field = <T>(fallback: T, parse: (text: string) => T | undefined, expected: string) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      const trimmed = text?.trim() ?? "";
      if (trimmed === "") return fallback;
      const value = parse(trimmed);
      if (value === undefined) {
        ctx.addIssue({ code: "custom", message: `expected ${expected}` });
        return z.NEVER;
      }
      return value;
    });

/** A duration such as `500ms`, `30s`, `5m`, `7d` (a bare number is ms). */
export const duration = (fallbackMs: number) =>
  field(fallbackMs, parseDuration, "a duration such as 500ms, 30s, 5m or 7d");

/** A duration, or `off` (or 0): 0 ms, the feature is off. */
export const durationOrOff = (fallbackMs: number) =>
  field(
    fallbackMs,
    (text) => (text === "off" || text === "0" ? 0 : parseDuration(text)),
    "a duration such as 30s or 5m, or off",
  );

/** A whole number from `min` to `max`. */
export const count = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

/** A whole number, or `off` (0: the limit is off). */
export const countOrOff = (fallback: number) =>
  field(
    fallback,
    (text) => {
      const value = text === "off" ? 0 : Number(text);
      return Number.isInteger(value) && value >= 0 ? value : undefined;
    },
    "a whole number, or off",
  );

/** A size in bytes: `512kb`, `1mb`, or a plain number of bytes. */
export const size = (fallback: number) =>
  field(
    fallback,
    (text) => {
      const value = bytes.parse(text);
      return value !== null && Number.isInteger(value) && value >= 1 ? value : undefined;
    },
    "a size such as 512kb or 1mb",
  );

/** `N/duration`, e.g. `20/1m`: `points` actions per `durationMs`. */
function parseLimit(text: string): { points: number; durationMs: number } | undefined {
  const match = /^(\d+)\s*\/\s*(.+)$/.exec(text);
  const durationMs = match?.[2] === undefined ? undefined : parseDuration(match[2]);
  if (!match || durationMs === undefined || Number(match[1]) < 1) return undefined;
  return { points: Number(match[1]), durationMs };
}

/** A rate limit: `N/duration`, e.g. `20/1m`; `fallback` in the same form. */
export const limit = (fallback: `${number}/${string}`) => {
  const byDefault = parseLimit(fallback);
  if (byDefault === undefined) throw new Error(`not a limit: ${fallback}`);
  return field(byDefault, parseLimit, "a limit such as 20/1m (count/duration)");
};

/** A comma list; empty items dropped. */
export const list = z
  .string()
  .optional()
  .transform((text) =>
    (text ?? "")
      .split(",")
      .map((item) => item.trim())
      .filter((item) => item !== ""),
  );

/** Trimmed text; unset or empty: undefined. */
export const optionalText = z
  .string()
  .optional()
  .transform((text) => (text === undefined || text.trim() === "" ? undefined : text.trim()));

/** A secret key of at least 16 characters, or unset. */
export const optionalKey = optionalText.pipe(z.string().min(16, "expected at least 16 characters").optional());

/** A URL path such as `/tether`: no trailing slash (dropped), no query; `/` or empty is the root (""). */
export const urlPath = z
  .string()
  .optional()
  .transform((text, ctx) => {
    const value = (text ?? "").trim().replace(/\/+$/, "");
    if (value !== "" && !/^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/.test(value)) {
      ctx.addIssue({ code: "custom", message: "expected a path such as /tether (starting with /, no query)" });
      return z.NEVER;
    }
    return value;
  });

/** A browser origin: scheme, host and port, nothing more. */
export const origin = z.string().refine((text) => {
  try {
    return new URL(text).origin === text;
  } catch {
    return false;
  }
}, "expected an origin such as https://app.example.com (scheme, host and port only, no trailing slash)");
