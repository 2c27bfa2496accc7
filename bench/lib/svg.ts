/** A line chart as hand-written SVG: axes, ticks, one polyline per series, a legend. */

export interface Series {
  name: string;
  color: string;
  points: [x: number, y: number][];
  dashed?: boolean;
}

export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  xMax: number;
  yMax: number;
  series: Series[];
}

const W = 720;
const H = 400;
const PAD = { left: 64, right: 20, top: 40, bottom: 52 };

const esc = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Round tick steps: 1, 2 or 5 × 10^k, about five per axis. */
function ticks(max: number): number[] {
  const raw = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw || 1));
  const step = ([1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  return Array.from({ length: Math.floor(max / step) + 1 }, (_, i) => i * step);
}

const label = (value: number) => (Number.isInteger(value) ? String(value) : value.toFixed(1));

export function lineChart(chart: Chart): string {
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (v: number) => PAD.left + (Math.min(v, chart.xMax) / chart.xMax) * plotW;
  const y = (v: number) => PAD.top + plotH - (Math.min(v, chart.yMax) / chart.yMax) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(chart.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(chart.title)}</text>`,
  ];
  for (const t of ticks(chart.xMax)) {
    parts.push(`<line x1="${x(t)}" y1="${PAD.top}" x2="${x(t)}" y2="${PAD.top + plotH}" stroke="#eee"/>`);
    parts.push(`<text x="${x(t)}" y="${PAD.top + plotH + 16}" text-anchor="middle">${label(t)}</text>`);
  }
  for (const t of ticks(chart.yMax)) {
    parts.push(`<line x1="${PAD.left}" y1="${y(t)}" x2="${PAD.left + plotW}" y2="${y(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${y(t) + 4}" text-anchor="end">${label(t)}</text>`);
  }
  parts.push(
    `<rect x="${PAD.left}" y="${PAD.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${PAD.left + plotW / 2}" y="${H - 12}" text-anchor="middle">${esc(chart.xLabel)}</text>`,
    `<text transform="translate(16 ${PAD.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(chart.yLabel)}</text>`,
  );
  chart.series.forEach((series, i) => {
    const points = series.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(" ");
    const dash = series.dashed ? ` stroke-dasharray="6 4"` : "";
    parts.push(`<polyline fill="none" stroke="${series.color}" stroke-width="2"${dash} points="${points}"/>`);
    const ly = PAD.top + plotH - 14 - i * 18;
    const lx = PAD.left + plotW - 210;
    parts.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${series.color}" stroke-width="2"${dash}/>`,
    );
    parts.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(series.name)}</text>`);
  });
  parts.push("</svg>", "");
  return parts.join("\n");
}

/** A cumulative curve from sorted times: (t, share of `total` done by t), stepping at each time. */
export function cumulative(sortedMs: number[], total: number, unit = 1000): [number, number][] {
  const points: [number, number][] = [[0, 0]];
  sortedMs.forEach((ms, i) => {
    points.push([ms / unit, (100 * i) / total], [ms / unit, (100 * (i + 1)) / total]);
  });
  return points;
}
