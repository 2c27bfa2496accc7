/** Listener maps with named events, e.g. `{ state: (s: State) => void }`. */
export type EventMap<T> = { [K in keyof T]: (...args: never[]) => void };

interface Entry {
  fn: (...args: never[]) => void;
  once: boolean;
}

/**
 * A minimal typed emitter for the client's listeners. A throwing listener cannot
 * break the connection state machine or keep the next listener from its event: its
 * error is rethrown asynchronously.
 */
export class Emitter<T extends EventMap<T>> {
  private readonly listeners = new Map<keyof T, Entry[]>();

  /** Adds a listener; returns the function that removes this registration (and no other). */
  on<E extends keyof T>(event: E, fn: T[E]): () => void {
    return this.add(event, fn, false);
  }

  /** Adds a listener for the next emit only; returns the function that removes it before. */
  once<E extends keyof T>(event: E, fn: T[E]): () => void {
    return this.add(event, fn, true);
  }

  /** Whether the event has any listener. */
  has(event: keyof T): boolean {
    return (this.listeners.get(event)?.length ?? 0) > 0;
  }

  /** Removes one listener, or every listener of the event when `fn` is omitted. */
  off<E extends keyof T>(event: E, fn?: T[E]): void {
    if (fn === undefined) {
      this.listeners.delete(event);
      return;
    }
    const entries = this.listeners.get(event);
    if (!entries) return;
    const index = entries.findIndex((entry) => entry.fn === fn);
    if (index >= 0) entries.splice(index, 1);
  }

  emit<E extends keyof T>(event: E, ...args: Parameters<T[E]>): void {
    const entries = this.listeners.get(event);
    if (!entries) return;
    for (const entry of [...entries]) {
      if (entry.once) this.remove(event, entry);
      try {
        (entry.fn as (...a: Parameters<T[E]>) => void)(...args);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  private add(event: keyof T, fn: (...args: never[]) => void, once: boolean): () => void {
    const entry: Entry = { fn, once };
    const entries = this.listeners.get(event) ?? [];
    entries.push(entry);
    this.listeners.set(event, entries);
    return () => this.remove(event, entry);
  }

  /** Removes one registration: keyed by event and entry, so the same function on another event stays. */
  private remove(event: keyof T, entry: Entry): void {
    const entries = this.listeners.get(event);
    const index = entries?.indexOf(entry) ?? -1;
    if (entries && index >= 0) entries.splice(index, 1);
  }
}
