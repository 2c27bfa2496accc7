import type { Metrics } from "./metrics.js";

/**
 * Wraps every method of a store so each call is timed and its failures
 * counted, labelled `<name>.<method>`: one place for store metrics, whatever
 * the backend. Each method's wrapper is made once (a store call runs on every
 * handshake and publish), and calls the method the store has at that moment.
 */
export function instrumentStore<T extends object>(store: T, name: string, metrics: Metrics): T {
  const wrappers = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || typeof property !== "string") return value;
      let wrapper = wrappers.get(property);
      if (wrapper === undefined) {
        const op = `${name}.${property}`;
        wrapper = (...args: unknown[]) =>
          metrics.timeStore(op, () =>
            (Reflect.get(target, property) as (...a: unknown[]) => Promise<unknown>).apply(target, args),
          );
        wrappers.set(property, wrapper);
      }
      return wrapper;
    },
  });
}
