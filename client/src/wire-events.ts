import { type RecoveryPayload, ServerEvent, type WelcomePayload } from "@tether/shared";

/** One server event as the SDK hands it on: its name and its arguments. */
export type WireEvent = [event: string, args: unknown[]];

/**
 * The events one server frame stands for, in order. A `welcome` that carries the recoveries
 * of a reconnect that missed nothing (`WelcomePayload.recovery`, asked for with
 * `auth.recoveryInWelcome`) is that `welcome`, without them, then one `recovery` each:
 * exactly what a server that sends them apart delivers.
 */
export function wireEvents(event: string, args: unknown[]): WireEvent[] {
  const payload = args[0] as Partial<WelcomePayload> | undefined;
  if (event !== ServerEvent.Welcome || !Array.isArray(payload?.recovery)) return [[event, args]];
  const { recovery, ...welcome } = payload as WelcomePayload & { recovery: RecoveryPayload[] };
  return [
    [event, [welcome, ...args.slice(1)]],
    ...recovery.map((report): WireEvent => [ServerEvent.Recovery, [report]]),
  ];
}
