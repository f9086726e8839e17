/**
 * The benchmark's chart as a self-contained SVG (generic font families only, nothing fetched): grouped bars on
 * log scales, one group per strategy, one bar per repository size, in three panels: wall time per clone,
 * bytes over the wire per clone, and total upstream bytes for N pods starting at once.
 */

export interface ChartSeries {
  /** Repository size label, e.g. "medium (120 MB)". */
  readonly label: string;
  /** strategy label -> value (undefined: not measured). */
  readonly values: ReadonlyMap<string, number | undefined>;
}

export interface ChartPanel {
  readonly title: string;
  readonly unit: 'seconds' | 'bytes';
  readonly groups: readonly string[];
  readonly series: readonly ChartSeries[];
}

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2'];
const WIDTH = 960;
const PANEL_HEIGHT = 300;
const MARGIN = { left: 80, right: 20, top: 40, bottom: 70 };

const escapeXml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function formatValue(value: number, unit: ChartPanel['unit']): string {
  if (unit === 'seconds') {
    if (value < 1) return `${(value * 1000).toFixed(0)} ms`;
    return `${value.toFixed(value < 10 ? 2 : 1)} s`;
  }
  if (value < 1024) return `${value.toFixed(0)} B`;
  if (value < 1024 ** 2) return `${(value / 1024).toFixed(1)} KiB`;
  if (value < 1024 ** 3) return `${(value / 1024 ** 2).toFixed(1)} MiB`;
  return `${(value / 1024 ** 3).toFixed(2)} GiB`;
}

function panelSvg(panel: ChartPanel, top: number): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const y0 = top + MARGIN.top;
  const positive = panel.series.flatMap((series) => [...series.values.values()]).filter((v): v is number => v !== undefined && v > 0);
  const minValue = Math.min(...positive, 1);
  const maxValue = Math.max(...positive, 1);
  const lo = Math.floor(Math.log10(minValue));
  const hi = Math.ceil(Math.log10(maxValue)) + (Math.log10(maxValue) % 1 === 0 ? 1 : 0);
  const scale = (value: number): number => y0 + plotHeight - ((Math.log10(value) - lo) / (hi - lo)) * plotHeight;
  const parts: string[] = [];
  parts.push(`<text x="${MARGIN.left}" y="${top + 24}" font-size="16" font-weight="bold">${escapeXml(panel.title)}</text>`);
  for (let exponent = lo; exponent <= hi; exponent++) {
    const y = scale(10 ** exponent);
    parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${(y + 4).toFixed(1)}" font-size="11" text-anchor="end">${escapeXml(formatValue(10 ** exponent, panel.unit))}</text>`);
  }
  const groupWidth = plotWidth / panel.groups.length;
  const barWidth = Math.min(36, (groupWidth - 16) / Math.max(1, panel.series.length));
  panel.groups.forEach((group, g) => {
    const groupX = MARGIN.left + g * groupWidth;
    const barsX = groupX + (groupWidth - barWidth * panel.series.length) / 2;
    panel.series.forEach((series, s) => {
      const value = series.values.get(group);
      const x = barsX + s * barWidth;
      if (value === undefined) return;
      const color = COLORS[s % COLORS.length] ?? '#888';
      if (value <= 0) {
        parts.push(`<text x="${(x + barWidth / 2).toFixed(1)}" y="${(y0 + plotHeight - 4).toFixed(1)}" font-size="10" text-anchor="middle" fill="${color}">0</text>`);
        return;
      }
      const y = Math.min(scale(value), y0 + plotHeight - 1);
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(y0 + plotHeight - y).toFixed(1)}" fill="${color}"><title>${escapeXml(`${group}, ${series.label}: ${formatValue(value, panel.unit)}`)}</title></rect>`,
      );
      parts.push(
        `<text x="${(x + barWidth / 2 - 1).toFixed(1)}" y="${(y - 3).toFixed(1)}" font-size="9" text-anchor="middle">${escapeXml(formatValue(value, panel.unit))}</text>`,
      );
    });
    parts.push(`<text x="${(groupX + groupWidth / 2).toFixed(1)}" y="${(y0 + plotHeight + 18).toFixed(1)}" font-size="12" text-anchor="middle">${escapeXml(group)}</text>`);
  });
  parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y0 + plotHeight}" y2="${y0 + plotHeight}" stroke="#333"/>`);
  panel.series.forEach((series, s) => {
    const x = MARGIN.left + s * 220;
    const y = y0 + plotHeight + 44;
    parts.push(`<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${COLORS[s % COLORS.length] ?? '#888'}"/>`);
    parts.push(`<text x="${x + 18}" y="${y}" font-size="12">${escapeXml(series.label)}</text>`);
  });
  return parts.join('\n');
}

export function renderChart(title: string, subtitle: string, panels: readonly ChartPanel[]): string {
  const height = 60 + panels.length * PANEL_HEIGHT;
  const body = panels.map((panel, index) => panelSvg(panel, 50 + index * PANEL_HEIGHT)).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${MARGIN.left}" y="24" font-size="18" font-weight="bold">${escapeXml(title)}</text>
<text x="${MARGIN.left}" y="42" font-size="12" fill="#555">${escapeXml(subtitle)}</text>
${body}
</svg>
`;
}
