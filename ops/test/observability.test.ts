// The observability profile (deploy/observability), checked by the tools that
// read it: promtool (Debian's `prometheus` package) parses the scrape config,
// the alert rules, and runs their unit tests (each alert fires on a synthetic
// series and stays quiet on a normal one). Grafana is not in Debian, so the
// dashboard is held to the structure Grafana needs to load and query it. And
// every metric the dashboard and the rules query exists in the /metrics of a
// real instance on a real Redis.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startInstance, type TestInstance } from "@tether/testkit/instance";
import { startRedis, type TestRedis } from "@tether/testkit/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

const ROOT = resolve(import.meta.dirname, "../..");
const OBS = join(ROOT, "deploy/observability");
const PROMETHEUS_YML = join(OBS, "prometheus/prometheus.yml");
const RULES_DIR = join(OBS, "prometheus/rules");
const RULE_TESTS = join(OBS, "prometheus/tests/tether.test.yml");
const DASHBOARDS_DIR = join(OBS, "grafana/dashboards");
const DATASOURCES_YML = join(OBS, "grafana/provisioning/datasources/prometheus.yml");
const PROVIDERS_YML = join(OBS, "grafana/provisioning/dashboards/tether.yml");

const hasPromtool = spawnSync("sh", ["-c", "command -v promtool"], { stdio: "ignore" }).status === 0;
// .ci/run installs `prometheus` (promtool); in CI its absence is a failure, not a skip.
if (!hasPromtool && process.env.CI === undefined) {
  console.warn("observability.test.ts: promtool not found (apt-get install prometheus): promtool checks skipped");
}

function promtool(...args: string[]) {
  const result = spawnSync("promtool", args, { cwd: ROOT, encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}${result.error ?? ""}` };
}

const ruleFiles = readdirSync(RULES_DIR)
  .filter((file) => file.endsWith(".rules.yml"))
  .map((file) => join(RULES_DIR, file));
const dashboardFiles = readdirSync(DASHBOARDS_DIR)
  .filter((file) => file.endsWith(".json"))
  .map((file) => join(DASHBOARDS_DIR, file));

describe.skipIf(!hasPromtool && process.env.CI === undefined)("Prometheus config and rules (promtool)", () => {
  it("parses the scrape config", () => {
    // --syntax-only: the bearer-token file exists only inside the container.
    const result = promtool("check", "config", "--syntax-only", PROMETHEUS_YML);
    expect(result.status, result.output).toBe(0);
  });

  it("parses the alert rules", () => {
    expect(ruleFiles.length).toBeGreaterThan(0);
    const result = promtool("check", "rules", ...ruleFiles);
    expect(result.status, result.output).toBe(0);
  });

  it("fires each alert on its synthetic series and stays quiet on normal ones", () => {
    const result = promtool("test", "rules", RULE_TESTS);
    expect(result.status, result.output).toBe(0);
  });
});

const RuleFile = z.object({
  groups: z.array(
    z.object({
      name: z.string(),
      rules: z.array(
        z.object({
          alert: z.string(),
          expr: z.string(),
          for: z.string(),
          labels: z.object({ severity: z.enum(["warning", "critical"]) }),
          annotations: z.object({ summary: z.string(), description: z.string(), runbook: z.string() }),
        }),
      ),
    }),
  ),
});
const rules = ruleFiles
  .flatMap((file) => RuleFile.parse(parseYaml(readFileSync(file, "utf8"))).groups)
  .flatMap((g) => g.rules);

describe("alert rules", () => {
  it("each has a Runbook entry in the README, and a promtool unit test", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const tests = readFileSync(RULE_TESTS, "utf8");
    for (const rule of rules) {
      expect(rule.annotations.runbook).toBe(`README.md#${rule.alert.toLowerCase()}`);
      expect(readme, rule.alert).toMatch(new RegExp(`^#### ${rule.alert}$`, "m"));
      expect(tests, rule.alert).toContain(`alertname: ${rule.alert}`);
    }
  });
});

// What Grafana needs to load a dashboard and run its queries (its dashboard
// model, schemaVersion 39): no official JSON Schema ships outside Grafana.
const DATASOURCE_UID = "tether-prometheus";
const Datasource = z.object({ type: z.literal("prometheus"), uid: z.literal(DATASOURCE_UID) });
const GridPos = z
  .object({
    h: z.number().int().positive(),
    w: z.number().int().min(1).max(24),
    x: z.number().int().min(0).max(23),
    y: z.number().int().min(0),
  })
  .refine((pos) => pos.x + pos.w <= 24, "a panel wider than the 24-column grid");
const Row = z.object({
  id: z.number().int(),
  type: z.literal("row"),
  title: z.string().min(1),
  gridPos: GridPos,
  collapsed: z.boolean(),
  panels: z.array(z.unknown()),
});
const Panel = z.object({
  id: z.number().int(),
  type: z.enum(["timeseries", "stat", "gauge", "bargauge", "table", "text", "heatmap"]),
  title: z.string().min(1),
  description: z.string().min(1),
  datasource: Datasource,
  gridPos: GridPos,
  fieldConfig: z.object({ defaults: z.object({}).loose(), overrides: z.array(z.unknown()) }),
  targets: z
    .array(z.object({ refId: z.string().regex(/^[A-Z]$/), datasource: Datasource, expr: z.string().min(1) }).loose())
    .min(1),
});
const Dashboard = z.object({
  uid: z.string().regex(/^[a-zA-Z0-9_-]{1,40}$/),
  title: z.string().min(1),
  schemaVersion: z.number().int().min(36),
  version: z.number().int(),
  editable: z.boolean(),
  time: z.object({ from: z.string(), to: z.string() }),
  templating: z.object({ list: z.array(z.unknown()) }),
  annotations: z.object({ list: z.array(z.unknown()) }),
  panels: z.array(z.union([Row, Panel])).min(1),
});
const dashboards = dashboardFiles.map((file) => Dashboard.parse(JSON.parse(readFileSync(file, "utf8"))));
const queryPanels = dashboards.flatMap((d) => d.panels).filter((p): p is z.infer<typeof Panel> => p.type !== "row");

describe("Grafana dashboard and provisioning", () => {
  it("is a dashboard Grafana can load: unique ids and refIds, no overlapping panels", () => {
    expect(dashboards.length).toBeGreaterThan(0);
    for (const dashboard of dashboards) {
      const ids = dashboard.panels.map((p) => p.id);
      expect(new Set(ids).size, "duplicate panel ids").toBe(ids.length);
      const cells = new Set<string>();
      for (const panel of dashboard.panels) {
        if (panel.type !== "row") {
          const refIds = panel.targets.map((t) => t.refId);
          expect(new Set(refIds).size, `${panel.title}: duplicate refIds`).toBe(refIds.length);
        }
        const { x, y, w, h } = panel.gridPos;
        for (let row = y; row < y + h; row++)
          for (let col = x; col < x + w; col++) {
            expect(cells.has(`${row},${col}`), `${panel.title} overlaps another panel`).toBe(false);
            cells.add(`${row},${col}`);
          }
      }
    }
  });

  it("covers what the issue asks for", () => {
    const exprs = queryPanels.flatMap((p) => p.targets.map((t) => t.expr)).join("\n");
    for (const metric of [
      "tether_connected_sockets",
      "tether_handshakes_total",
      "tether_reconnects_total",
      "tether_recoveries_total",
      'tether_ws_tokens_total{result="refused"}',
      "tether_redis_command_duration_seconds_bucket",
      "tether_redis_errors_total",
      "nodejs_eventloop_lag_p99_seconds",
      "tether_drain_remaining_sockets",
    ])
      expect(exprs).toContain(metric);
  });

  it("shows time to reconnect, replay sizes and recoveries by reason from their histograms and labels", () => {
    const exprsOf = (title: RegExp) => {
      const panel = queryPanels.find((p) => title.test(p.title));
      expect(panel, `a panel titled ${title}`).toBeDefined();
      return panel?.targets.map((t) => t.expr.replace(/\s+/g, " ")) ?? [];
    };
    const quantile = (q: number, by: string, histogram: string) =>
      `histogram_quantile(${q}, sum by (${by}) (rate(${histogram}_bucket[$__rate_interval])))`;
    expect(exprsOf(/^Time to reconnect/)).toEqual(
      expect.arrayContaining([
        quantile(0.5, "le", "tether_reconnect_duration_seconds"),
        quantile(0.99, "le", "tether_reconnect_duration_seconds"),
      ]),
    );
    expect(exprsOf(/^Replay size/)).toContain(quantile(0.99, "le, stream", "tether_replay_size_events"));
    expect(exprsOf(/^Recoveries by reason/)).toEqual([
      'sum by (reason) (rate(tether_recoveries_total{recovered="false"}[$__rate_interval]))',
    ]);
    const byReason = queryPanels.find((p) => /^Recoveries by reason/.test(p.title));
    expect(byReason?.fieldConfig.defaults).toMatchObject({ custom: { stacking: { mode: "normal" } } });
    // No placeholder stands in for a metric any more.
    for (const panel of queryPanels) expect(panel.description, panel.title).not.toMatch(/^LIMIT:/);
  });

  it("is provisioned with the datasource uid its panels name, from the folder compose mounts", () => {
    const datasources = parseYaml(readFileSync(DATASOURCES_YML, "utf8")) as {
      datasources: { uid: string; type: string; url: string }[];
    };
    expect(datasources.datasources).toContainEqual(
      expect.objectContaining({ uid: DATASOURCE_UID, type: "prometheus", url: "http://prometheus:9090" }),
    );
    const providers = parseYaml(readFileSync(PROVIDERS_YML, "utf8")) as {
      providers: { type: string; options: { path: string } }[];
    };
    const compose = readFileSync(join(ROOT, "docker-compose.yml"), "utf8");
    for (const provider of providers.providers) {
      expect(provider.type).toBe("file");
      expect(compose).toContain(`./deploy/observability/grafana/dashboards:${provider.options.path}:ro`);
    }
    expect(compose).toContain("./deploy/observability/grafana/provisioning:/etc/grafana/provisioning:ro");
    expect(compose).toContain("./deploy/observability/prometheus:/etc/prometheus:ro");
  });

  it("runs Prometheus and Grafana only under the observability profile, on localhost", () => {
    const compose = parseYaml(readFileSync(join(ROOT, "docker-compose.yml"), "utf8")) as {
      services: Record<string, { profiles?: string[]; ports?: string[] }>;
    };
    for (const name of ["prometheus", "grafana"]) {
      const service = compose.services[name];
      expect(service?.profiles, name).toEqual(["observability"]);
      for (const port of service?.ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });
});

/** Prometheus's own series, made by the scrape rather than exposed by the target. */
const SCRAPE_SERIES = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"]);
const PROMQL_WORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"]);
const PROMQL_WORDS_ALT = [...PROMQL_WORDS].join("|");

/** Metric names a PromQL expression selects: strings, label matchers, ranges, groupings and functions removed. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(new RegExp(`\\b(?:${PROMQL_WORDS_ALT})\\s*\\([^)]*\\)`, "g"), " ")
    .replace(/\boffset\s+\S+/g, " ")
    .replace(/\$\w+/g, " ");
  const names = new Set<string>();
  for (const match of bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)) {
    const name = match[1] ?? "";
    if (!PROMQL_WORDS.has(name) && name !== "bool" && !/^(?:inf|nan)$/i.test(name)) names.add(name);
  }
  return [...names];
}

/** Families in a Prometheus text exposition, by type (from the # TYPE lines). */
function families(text: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) found.set(match[1] ?? "", match[2] ?? "");
  return found;
}

/** Whether `name` is a series of one of `families` (histograms and summaries add suffixes). */
function exposes(known: Map<string, string>, name: string): boolean {
  if (known.has(name)) return true;
  const suffix = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (!suffix) return false;
  const type = known.get(suffix[1] ?? "");
  return type === "histogram" || (type === "summary" && suffix[2] !== "bucket");
}

describe("metricNames", () => {
  it("finds the selected metrics, and no function, keyword, label or range", () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, op) (rate(tether_redis_command_duration_seconds_bucket{op!="x"}[$__rate_interval])))',
      ),
    ).toEqual(["tether_redis_command_duration_seconds_bucket"]);
    expect(
      metricNames(
        'sum(rate(a_total{result!="ok"}[5m])) / clamp_min(sum(b), 1) > 0.25 and on(instance) up{job="tether"} == 0',
      ).sort(),
    ).toEqual(["a_total", "b", "up"]);
  });
});

describe("every queried metric exists in /metrics", () => {
  let redis: TestRedis;
  let instance: TestInstance;
  const METRICS_KEY = "observability-test-metrics-key";

  beforeAll(async () => {
    redis = await startRedis();
    instance = await startInstance({ REDIS_URL: redis.url, TETHER_METRICS_KEY: METRICS_KEY });
  }, 60_000);
  afterAll(async () => {
    await instance?.stop();
    await redis?.close();
  });

  it("in the dashboard and the alert rules, scraped with the bearer key as Prometheus does", async () => {
    const res = await fetch(`${instance.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_KEY}` } });
    expect(res.status).toBe(200);
    const known = families(await res.text());
    expect(known.size).toBeGreaterThan(0);

    const queries = [
      ...rules.map((rule) => ({ where: `rule ${rule.alert}`, expr: rule.expr })),
      ...queryPanels.flatMap((panel) => panel.targets.map((t) => ({ where: `panel "${panel.title}"`, expr: t.expr }))),
    ];
    const missing: string[] = [];
    let checked = 0;
    for (const { where, expr } of queries)
      for (const name of metricNames(expr)) {
        checked++;
        if (!SCRAPE_SERIES.has(name) && !exposes(known, name)) missing.push(`${where}: ${name}`);
      }
    expect(checked).toBeGreaterThan(queries.length - 1);
    expect(missing).toEqual([]);
  });
});
