import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/**
 * A file or folder of the installed @tether/client package (the demo page, the
 * SharedWorker script), or undefined when the package or the file is not there
 * (a server installed without the client, or a client not built yet).
 */
export function clientPackageFile(path: string): string | undefined {
  try {
    const clientPackage = createRequire(import.meta.url).resolve("@tether/client/package.json");
    const file = join(dirname(clientPackage), path);
    return existsSync(file) ? file : undefined;
  } catch {
    return undefined;
  }
}
