/** Anything with once/off: node EventEmitters, socket.io sockets, Tether clients. */
export interface Emitter {
  // biome-ignore lint/suspicious/noExplicitAny: listeners of any emitter.
  once(event: string, listener: (...args: any[]) => void): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: listeners of any emitter.
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** Waits until `check` returns a truthy value (or stops throwing), or fails naming what it waited for. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 25 } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const reason = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The next `event` from `emitter`, or a named timeout. */
export function nextEvent<T = unknown>(emitter: Emitter, event: string, timeoutMs = 10_000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}"`));
    }, timeoutMs);
    const onEvent = (value: T) => {
      clearTimeout(timer);
      resolve(value);
    };
    emitter.once(event, onEvent);
  });
}

/**
 * Lets time pass when the passing of time is the scenario under test ("idle
 * past the token TTL"); never use it to wait for an effect (use waitFor).
 */
export function idleFor(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
