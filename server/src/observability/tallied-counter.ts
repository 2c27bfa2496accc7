import { Counter, type CounterConfiguration, type LabelValues } from "prom-client";

interface Tally<L extends string> {
  labels: LabelValues<L>;
  value: number;
}

/**
 * A prom-client counter for hot paths (every handshake, every delivered event): an increment is
 * a plain addition to the tally of its label values, handed to prom-client when the registry is
 * read (`collect`). prom-client's own `inc` hashes, sorts and validates the labels every time,
 * 1–3 µs a call. Read through the registry (`/metrics`, `registry.metrics()`) as ever; label
 * names are checked then, not at each increment (Tether's call sites are typed).
 */
export class TalliedCounter<L extends string = string> extends Counter<L> {
  private readonly tallies = new Map<string, Tally<L>>();
  private readonly names: readonly L[];

  constructor(config: Omit<CounterConfiguration<L>, "collect">) {
    super(config);
    this.names = config.labelNames ?? [];
    const publish = this.inc.bind(this) as (labels: LabelValues<L>, value: number) => void;
    (this as { collect?: () => void }).collect = () => {
      this.reset();
      for (const { labels, value } of this.tallies.values()) publish(labels, value);
    };
    this.inc = ((labels?: LabelValues<L> | number, value?: number) => {
      if (typeof labels === "object") this.add(labels, value ?? 1);
      else this.add({}, labels ?? 1);
    }) as Counter<L>["inc"];
  }

  private add(labels: LabelValues<L>, value: number): void {
    if (!(value >= 0) || !Number.isFinite(value)) throw new TypeError(`A counter cannot add ${value}`);
    const key = this.keyOf(labels);
    const tally = this.tallies.get(key);
    if (tally) tally.value += value;
    else this.tallies.set(key, { labels: { ...labels }, value });
  }

  private keyOf(labels: LabelValues<L>): string {
    const { names } = this;
    if (names.length === 0) return "";
    if (names.length === 1) return String(labels[names[0] as L]);
    let key = "";
    for (const name of names) key += `${labels[name]}\u0000`;
    return key;
  }
}
