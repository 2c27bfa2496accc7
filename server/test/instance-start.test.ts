import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { afterAll, describe, expect, it } from "vitest";

/**
 * The tests' own harness: a server is ready when *it* answers on its port. A port picked free
 * may be bound by another test's server first; that one answers `/readyz` too, and a test that
 * took it for its own would log in against another instance (another API key: a 401 that only
 * shows on a busy machine).
 */
describe("the test harness starts its own server", () => {
  const started: TestInstance[] = [];
  afterAll(async () => {
    await Promise.all(started.map((instance) => instance.kill()));
  });

  it("another server already answering on the port is not taken for it: the start fails, naming the exit", async () => {
    const decoy = await startInstance({ TETHER_API_KEY: "decoy-api-key-0123456789abcdef" });
    started.push(decoy);
    const ready = await (await fetch(`${decoy.url}/readyz`)).json();
    expect(ready).toMatchObject({ status: "ready", instance: expect.any(String) });
    await expect(
      startInstance({ TETHER_API_KEY: "other-api-key-0123456789abcdef" }, { port: decoy.port }),
    ).rejects.toThrow(/exited/);
  });
});
