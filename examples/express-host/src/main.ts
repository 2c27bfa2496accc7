/** Runs the example host app: `node --import tsx examples/express-host/src/main.ts` from the repository root. */
import { startHostApp } from "./app.js";

const app = await startHostApp({ HOST: "127.0.0.1", ...process.env });
process.stdout.write(`host app on ${app.url} (log in as alice or bob; see src/app.ts)\n`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0));
  });
}
