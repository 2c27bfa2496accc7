import { createTetherHooks } from "@tether/react";
import type { ChatEvents } from "./events.js";

/** The provider and hooks, typed by the example's event map. */
export const { TetherProvider, useTether, useConnectionState, useEvent, useSubscription, usePresence } =
  createTetherHooks<ChatEvents>();
