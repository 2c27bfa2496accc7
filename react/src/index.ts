/**
 * React bindings of the Tether client: {@link TetherProvider}, {@link useConnectionState},
 * {@link useEvent}, {@link useSubscription} and {@link usePresence}, typed by the app's
 * event map through {@link createTetherHooks}. Correct under StrictMode's double mount:
 * one connection, one listener per hook, and one join per room (reference-counted).
 *
 * @packageDocumentation
 */

export { DEFAULT_KEEP_EVENTS, MAX_KEEP_EVENTS } from "./bounded.js";
// Every hook and its types (`createTetherHooks` below returns the same hooks, typed by one map).
export * from "./hooks.js";
export { TetherProvider, type TetherProviderProps } from "./provider.js";
export { type Lease, type Schedule, SharedResource } from "./shared-resource.js";
export { createTetherHooks, type TetherHooks } from "./typed.js";
