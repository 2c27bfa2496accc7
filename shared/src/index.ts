export * from "./app-events.js";
export * from "./codes.js";
export * from "./defaults.js";
export * from "./event-names.js";
export * from "./events.js";
export * from "./http.js";
export * from "./offset.js";
export * from "./schemas.js";
