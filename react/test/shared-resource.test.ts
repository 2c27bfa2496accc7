import { describe, expect, it } from "vitest";
import { type Schedule, SharedResource } from "../src/shared-resource.js";

/** A schedule the test runs by hand: what `setTimeout(…, 0)` would run after the current task. */
function manualSchedule(): { schedule: Schedule; runAll(): void; pending(): number } {
  const tasks = new Set<() => void>();
  return {
    schedule: (task) => {
      tasks.add(task);
      return () => tasks.delete(task);
    },
    runAll: () => {
      const due = [...tasks];
      tasks.clear();
      for (const task of due) task();
    },
    pending: () => tasks.size,
  };
}

/** A resource whose opens and closes are recorded, as `open:<key>:<n>` / `close:<key>:<n>`. */
function recorded() {
  const log: string[] = [];
  let made = 0;
  const timing = manualSchedule();
  const resource = new SharedResource<string, string, string>(
    (key, arg) => {
      made += 1;
      log.push(`open:${key}:${arg}`);
      return `${key}#${made}`;
    },
    (value) => log.push(`close:${value}`),
    timing.schedule,
  );
  return { log, resource, timing };
}

describe("SharedResource (the provider's reference counting per room and per connection)", () => {
  it("StrictMode's mount, unmount, mount opens once and never closes in between", () => {
    const { log, resource, timing } = recorded();
    const first = resource.acquire("doc:1", "a");
    first.release(); // StrictMode's simulated unmount
    const second = resource.acquire("doc:1", "b"); // … and its second mount, in the same task
    timing.runAll();
    expect(second.value).toBe(first.value);
    expect(log).toEqual(["open:doc:1:a"]);
    expect(resource.holders("doc:1")).toBe(1);
    expect(timing.pending()).toBe(0);
  });

  it("closes once after the last holder lets go, and a later acquire opens anew", () => {
    const { log, resource, timing } = recorded();
    const a = resource.acquire("doc:1", "a");
    const b = resource.acquire("doc:1", "b");
    a.release();
    timing.runAll();
    expect(log).toEqual(["open:doc:1:a"]);
    b.release();
    expect(log).toEqual(["open:doc:1:a"]); // deferred to the next task
    timing.runAll();
    expect(log).toEqual(["open:doc:1:a", "close:doc:1#1"]);
    const c = resource.acquire("doc:1", "c");
    expect(c.value).toBe("doc:1#2");
    expect(log).toEqual(["open:doc:1:a", "close:doc:1#1", "open:doc:1:c"]);
  });

  it("a release repeated many times counts once (hostile: a cleanup run twice)", () => {
    const { log, resource, timing } = recorded();
    const keeper = resource.acquire("doc:1", "a");
    const twice = resource.acquire("doc:1", "a");
    for (let i = 0; i < 1_000; i += 1) twice.release();
    timing.runAll();
    expect(resource.holders("doc:1")).toBe(1);
    expect(log).toEqual(["open:doc:1:a"]);
    keeper.release();
    keeper.release();
    timing.runAll();
    expect(log).toEqual(["open:doc:1:a", "close:doc:1#1"]);
  });

  it("keys are counted apart", () => {
    const { log, resource, timing } = recorded();
    const one = resource.acquire("doc:1", "a");
    resource.acquire("doc:2", "a");
    one.release();
    timing.runAll();
    expect(log).toEqual(["open:doc:1:a", "open:doc:2:a", "close:doc:1#1"]);
    expect(resource.holders("doc:2")).toBe(1);
  });

  it("a value forgotten (it ended on its own) is not closed, and the next acquire opens a new one", () => {
    const { log, resource, timing } = recorded();
    const old = resource.acquire("doc:1", "a");
    resource.forget("doc:1", old.value);
    old.release();
    timing.runAll();
    expect(log).toEqual(["open:doc:1:a"]);
    const fresh = resource.acquire("doc:1", "b");
    expect(fresh.value).toBe("doc:1#2");
    // Forgetting with a stale value leaves the current one alone.
    resource.forget("doc:1", old.value);
    expect(resource.holders("doc:1")).toBe(1);
  });

  it("with the default schedule, the close runs after the current task", async () => {
    const closed: string[] = [];
    const resource = new SharedResource<string, string>(
      (key) => key,
      (value) => closed.push(value),
    );
    resource.acquire("room", undefined).release();
    expect(closed).toEqual([]);
    await new Promise((next) => setTimeout(next, 0));
    expect(closed).toEqual(["room"]);
  });
});
