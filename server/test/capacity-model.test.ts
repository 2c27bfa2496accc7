import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/config.js";
import {
  BYTES_PER_SOCKET,
  FALLBACK_FD_LIMIT,
  FD_RESERVE,
  type Machine,
  parseFdLimits,
  resolveCapacity,
} from "../src/env/capacity.js";
import { connectionCeiling } from "../src/http/connection-gate.js";

const GiB = 2 ** 30;
const machine = (over: Partial<Machine> = {}): Machine => ({
  fdLimit: 20_000,
  fdHardLimit: 20_000,
  heapLimitBytes: 4 * GiB,
  cgroupMemoryBytes: undefined,
  ...over,
});

/** Issue 21, item 1: the caps come from what the machine allows, not from a constant of 10,000. */
describe("capacity from the machine", () => {
  it("reads the soft and hard fd limits from /proc/self/limits", () => {
    const text = [
      "Limit                     Soft Limit           Hard Limit           Units",
      "Max open files            20000                1048576              files",
      "Max locked memory         8388608              8388608              bytes",
    ].join("\n");
    expect(parseFdLimits(text)).toEqual({ soft: 20_000, hard: 1_048_576 });
    expect(parseFdLimits("Max open files  unlimited  unlimited  files")).toEqual({
      soft: Number.POSITIVE_INFINITY,
      hard: Number.POSITIVE_INFINITY,
    });
    expect(parseFdLimits("nothing here")).toBeUndefined();
  });

  it("this box's 20,000 descriptors hold 18,000 sockets at the defaults, and the hard ceiling fits in them", () => {
    const capacity = resolveCapacity(machine());
    expect(capacity.boundBy).toBe("file descriptors");
    expect(capacity.sockets).toBeGreaterThanOrEqual(18_000);
    expect(capacity.sockets + capacity.keepAlive).toBeLessThanOrEqual(capacity.connections);
    expect(connectionCeiling(capacity.connections)).toBeLessThanOrEqual(20_000 - FD_RESERVE);
    expect(capacity.warning).toBeUndefined();
    expect(capacity.reason).toMatch(/sockets \d+ \(by file descriptors: fd limit 20000/);
  });

  it("a low fd limit lowers every cap and warns how to raise it", () => {
    const capacity = resolveCapacity(machine({ fdLimit: 1_024, fdHardLimit: 524_288 }));
    expect(connectionCeiling(capacity.connections)).toBeLessThanOrEqual(1_024 - FD_RESERVE);
    expect(capacity.sockets).toBeLessThan(1_024 - FD_RESERVE);
    expect(capacity.warning).toMatch(/file-descriptor limit is 1024.*ulimit -n 65536/);
  });

  it("a small memory budget (cgroup or TETHER_MEMORY_BUDGET) bounds the sockets when it is lower", () => {
    const inContainer = resolveCapacity(machine({ cgroupMemoryBytes: 256 * 2 ** 20 }));
    expect(inContainer.boundBy).toBe("memory");
    expect(inContainer.sockets).toBe(Math.floor((128 * 2 ** 20) / BYTES_PER_SOCKET));
    expect(inContainer.reason).toMatch(/cgroup memory limit/);
    const budgeted = resolveCapacity(machine(), { memoryBudgetBytes: 40 * 1024 * 100 });
    expect(budgeted).toMatchObject({ sockets: 100, boundBy: "memory" });
  });

  it("explicit settings win, and the fallback elsewhere is the old constant's order", () => {
    expect(resolveCapacity(machine(), { maxSockets: 5, maxConnections: 50, maxKeepAliveConnections: 7 })).toMatchObject(
      {
        sockets: 5,
        connections: 50,
        keepAlive: 7,
        boundBy: "setting",
      },
    );
    const unknown = resolveCapacity(machine({ fdLimit: undefined, fdHardLimit: undefined }));
    expect(connectionCeiling(unknown.connections)).toBeLessThanOrEqual(FALLBACK_FD_LIMIT);
    expect(unknown.reason).toMatch(/no fd limit readable/);
  });

  it("loadConfig applies them; a bad value names the variable", () => {
    const config = loadConfig({ TETHER_MAX_SOCKETS: "3", TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS: "4" });
    expect(config.maxSockets).toBe(3);
    expect(config.http.maxKeepAliveConnections).toBe(4);
    expect(loadConfig({ TETHER_MEMORY_BUDGET: "1mb" }).maxSockets).toBe(Math.floor(2 ** 20 / BYTES_PER_SOCKET));
    for (const name of ["TETHER_MAX_SOCKETS", "TETHER_HTTP_MAX_KEEP_ALIVE_CONNECTIONS", "TETHER_MEMORY_BUDGET"]) {
      expect(() => loadConfig({ [name]: "lots" })).toThrow(new RegExp(name));
    }
    expect(() => loadConfig({ TETHER_MAX_SOCKETS: "0" })).toThrow(/TETHER_MAX_SOCKETS/);
  });
});
