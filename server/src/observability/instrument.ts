import type { Metrics } from "./metrics.js";

/**
 * Wraps every method of a store so each call is timed and its failures
 * counted, labelled `<name>.<method>`: one place for store metrics, whatever
 * the backend.
 */
export function instrumentStore<T extends object>(store: T, name: string, metrics: Metrics): T {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || typeof property !== "string") return value;
      return (...args: unknown[]) => metrics.timeStore(`${name}.${property}`, () => value.apply(target, args));
    },
  });
}
