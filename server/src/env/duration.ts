import ms from "ms";

/**
 * Parses a duration such as `500ms`, `30s`, `5m`, `7d` (a bare number is
 * milliseconds). Returns undefined when the text is not a positive duration.
 */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  const value = /^\d+$/.test(trimmed) ? Number(trimmed) : ms(trimmed as ms.StringValue);
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.round(value) : undefined;
}
