type Listener = (...args: unknown[]) => void;
type AuthCallback = (cb: (data: object) => void) => void;

/**
 * Stands in for a socket.io-client Socket in state-machine tests: the test plays
 * the server (accept, refuse, emit, drop) and sees what the client asked for.
 */
export class FakeSocket {
  connected = false;
  connectCalls = 0;
  disconnectCalls = 0;
  /**
   * Handshake payloads the client sent (what it passed to the auth callback), without
   * `recoveryInWelcome`: every handshake asks for it, recorded apart in `recoveryInWelcome`.
   */
  readonly handshakes: object[] = [];
  /** Each handshake's `auth.recoveryInWelcome`. */
  readonly recoveryInWelcome: unknown[] = [];
  private readonly handlers = new Map<string, Listener[]>();
  private readonly anyHandlers: Listener[] = [];
  private readonly auth: AuthCallback;

  constructor(readonly options: { auth: AuthCallback } & Record<string, unknown>) {
    this.auth = options.auth;
  }

  on(event: string, fn: Listener): this {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), fn]);
    return this;
  }

  once(event: string, fn: Listener): this {
    const wrapper: Listener = (...args) => {
      this.off(event, wrapper);
      fn(...args);
    };
    return this.on(event, wrapper);
  }

  off(event: string, fn?: Listener): this {
    const list = this.handlers.get(event) ?? [];
    this.handlers.set(event, fn === undefined ? [] : list.filter((l) => l !== fn));
    return this;
  }

  listeners(event: string): Listener[] {
    return [...(this.handlers.get(event) ?? [])];
  }

  onAny(fn: Listener): this {
    this.anyHandlers.push(fn);
    return this;
  }

  /** The engine "opens" at once: the auth callback runs, as socket.io-client does on open. */
  connect(): this {
    this.connectCalls += 1;
    this.auth((data) => {
      const { recoveryInWelcome, ...auth } = data as { recoveryInWelcome?: unknown };
      this.recoveryInWelcome.push(recoveryInWelcome);
      this.handshakes.push(auth);
    });
    return this;
  }

  disconnect(): this {
    this.disconnectCalls += 1;
    if (this.connected) {
      this.connected = false;
      this.emitLocal("disconnect", "io client disconnect");
    }
    return this;
  }

  /** Acknowledged emits the client sent, in order. */
  readonly acked: Array<{ event: string; payload: unknown }> = [];
  /** Plays the server's acknowledgement; by default it echoes the payload. */
  answer: (event: string, payload: unknown) => unknown | Promise<unknown> = (_event, payload) => payload;

  timeout(_ms: number): { emitWithAck: (event: string, ...args: unknown[]) => Promise<unknown> } {
    return {
      emitWithAck: async (event, payload) => {
        this.acked.push({ event, payload });
        return this.answer(event, payload);
      },
    };
  }

  // The server's side.
  accept(): void {
    this.connected = true;
    this.emitLocal("connect");
  }

  refuse(data?: unknown): void {
    this.emitLocal("connect_error", Object.assign(new Error("refused"), { data }));
  }

  drop(reason = "transport close"): void {
    this.connected = false;
    this.emitLocal("disconnect", reason);
  }

  serverEmit(event: string, payload: unknown): void {
    for (const fn of this.anyHandlers) fn(event, payload);
    this.emitLocal(event, payload);
  }

  private emitLocal(event: string, ...args: unknown[]): void {
    for (const fn of this.listeners(event)) fn(...args);
  }
}
