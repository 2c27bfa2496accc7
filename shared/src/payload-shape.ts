/**
 * Bounds on the shape of a payload, checked without recursion before anything
 * walks it recursively (Socket.IO's encoder, JSON.stringify, a schema): a
 * 14 KB array nested 7,000 deep overflows the stack of every recursive walker.
 */
export interface PayloadShapeLimits {
  /** Deepest nesting of arrays and objects (a scalar payload is depth 0). */
  maxDepth: number;
  /** Most values (scalars, arrays and objects together) in one payload. */
  maxNodes: number;
}

/** The defaults: deeper or larger payloads are refused with INVALID_INPUT. */
export const PAYLOAD_SHAPE_LIMITS: PayloadShapeLimits = { maxDepth: 32, maxNodes: 20_000 };

/**
 * Why a payload cannot be sent as JSON within the limits, or undefined when it
 * can: too deep, too many values, or a value JSON cannot carry (a BigInt, a
 * symbol, a function; a cycle counts as too deep). Binary values (Buffer, typed arrays) are leaves.
 * Iterative: never overflows the stack, whatever it is given.
 *
 * @example
 * payloadShapeProblem(JSON.parse("[".repeat(40) + "]".repeat(40))); // "nested deeper than 32 levels"
 */
export function payloadShapeProblem(
  value: unknown,
  limits: PayloadShapeLimits = PAYLOAD_SHAPE_LIMITS,
): string | undefined {
  const stack: [unknown, number][] = [[value, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (++nodes > limits.maxNodes) return `more than ${limits.maxNodes} values`;
    switch (typeof current) {
      case "bigint":
        return "a BigInt is not JSON";
      case "symbol":
      case "function":
        return `a ${typeof current} is not JSON`;
      case "object":
        break;
      default:
        continue;
    }
    if (current === null || ArrayBuffer.isView(current) || current instanceof ArrayBuffer) continue;
    if (depth >= limits.maxDepth) return `nested deeper than ${limits.maxDepth} levels`;
    const children = Array.isArray(current) ? current : Object.values(current);
    for (const child of children) stack.push([child, depth + 1]);
  }
  return undefined;
}
