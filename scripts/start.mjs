#!/usr/bin/env node
// `npm start`: build only what is missing, then run one instance in this
// process, so SIGTERM reaches it directly.
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildIfMissing } from "./build-if-missing.mjs";

buildIfMissing("tether");
await import(pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), "../server/dist/main.js")).href);
