// Time charts (bars, lines, areas) over uPlot, with drag-to-zoom on the time axis.

import uPlot from '../vendor/uplot/uPlot.esm.js';

export const PALETTE = ['#4a7bd0', '#e07b39', '#3aa675', '#c2457a', '#8a6bd1', '#c9a227', '#2f9fb4', '#9c5b3c', '#6b8e23', '#7a7a7a'];

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/**
 * Draws a time chart into `container`.
 * opts: { x: [ms...], series: [{label, values}], kind: 'bar'|'line'|'area', stacked,
 *         height, onSelect(fromMs, toMs), bucketMs }
 * Returns { destroy() }.
 */
export function timeChart(container, opts) {
  const { x, kind = 'bar', height = 160, onSelect } = opts;
  let series = opts.series;
  // Stacked bars: draw cumulative sums, tallest first, so each band shows its share.
  let drawn = series.map(s => s.values.slice());
  if (opts.stacked && series.length > 1) {
    for (let i = 1; i < drawn.length; i++) drawn[i] = drawn[i].map((v, j) => (v || 0) + (drawn[i - 1][j] || 0));
  }
  const order = series.map((_, i) => i);
  if (opts.stacked) order.reverse();
  const fg = cssVar('--fg-muted', '#666');
  const grid = cssVar('--border', '#ddd');
  const paths = kind === 'bar' ? uPlot.paths.bars({ size: [0.85, 64], align: 1 }) : undefined;
  const half = opts.bucketMs ? opts.bucketMs : 0;
  const u = new uPlot({
    width: Math.max(200, container.clientWidth || 600),
    height,
    ms: 1,
    legend: { show: false },
    cursor: { drag: { x: !!onSelect, y: false, setScale: false }, points: { show: kind !== 'bar' } },
    scales: { x: { time: true, range: (u, min, max) => [min, max + half] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.05)] } },
    axes: [
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 56,
        values: (u, vals) => vals.map(v => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : v)) },
    ],
    series: [{}, ...order.map(i => ({
      label: series[i].label,
      stroke: PALETTE[i % PALETTE.length],
      fill: kind === 'line' ? undefined : PALETTE[i % PALETTE.length] + (kind === 'area' ? '55' : 'cc'),
      width: kind === 'bar' ? 0 : 2,
      paths,
      points: { show: false },
    }))],
    hooks: {
      setSelect: [(u) => {
        if (!onSelect || u.select.width < 3) return;
        const a = u.posToVal(u.select.left, 'x');
        const b = u.posToVal(u.select.left + u.select.width, 'x');
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        onSelect(Math.round(a), Math.round(b));
      }],
    },
  }, [x, ...order.map(i => drawn[i])], container);
  const ro = new ResizeObserver(() => {
    const w = container.clientWidth;
    if (w > 0 && Math.abs(w - u.width) > 2) u.setSize({ width: w, height });
  });
  ro.observe(container);
  return { destroy() { ro.disconnect(); u.destroy(); }, uplot: u };
}
