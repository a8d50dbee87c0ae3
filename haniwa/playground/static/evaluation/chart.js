// haniwa playground — the Evaluation panel's interval chart: one row per metric, one bar per job (the
// mean, on [0, 1]) with a whisker for its bootstrap 95% interval. Plain SVG built with createElementNS;
// colours come from evaluation.css classes (the page's CSP allows no inline style attribute).

const NS = 'http://www.w3.org/2000/svg';
const LEFT = 210;
const WIDTH = 420;
const BAR = 14;
const GAP = 10;

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'testid') el.setAttribute('data-testid', v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const clamp = (x) => Math.max(0, Math.min(1, Number(x)));
const fmt = (x) => (x === null || x === undefined ? '—' : Number(x).toFixed(3));

// series: [{label, metrics: {name: {mean, ci95Low, ci95High, count}}}]
export function intervalChart(series) {
  const names = [...new Set(series.flatMap((x) => Object.keys(x.metrics || {})))].sort();
  const rowH = series.length * (BAR + 4) + GAP;
  const height = names.length * rowH + 40;
  const svg = s('svg', {
    class: 'eval-chart', width: LEFT + WIDTH + 70, height, viewBox: `0 0 ${LEFT + WIDTH + 70} ${height}`,
    role: 'img', testid: 'eval-chart',
  });
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    const x = LEFT + t * WIDTH;
    svg.append(s('line', { class: 'eval-grid', x1: x, x2: x, y1: 0, y2: height - 24 }));
    svg.append(s('text', { class: 'eval-axis', x, y: height - 8, 'text-anchor': 'middle' }, String(t)));
  }
  names.forEach((name, i) => {
    const y0 = i * rowH + 4;
    svg.append(s('text', { class: 'eval-label', x: LEFT - 8, y: y0 + (rowH - GAP) / 2 + 4, 'text-anchor': 'end' }, name));
    series.forEach((ser, j) => {
      const v = (ser.metrics || {})[name];
      if (!v) return;
      const y = y0 + j * (BAR + 4);
      const g = s('g', { testid: 'eval-bar', 'data-metric': name, 'data-job': ser.label, 'data-mean': v.mean ?? '' });
      g.append(s('title', {}, `${ser.label} · ${name}: ${fmt(v.mean)} [${fmt(v.ci95Low)}, ${fmt(v.ci95High)}] (n=${v.count ?? 0})`));
      if (v.mean !== null && v.mean !== undefined) {
        g.append(s('rect', { class: `eval-bar eval-series-${j % 4}`, x: LEFT, y, width: (clamp(v.mean) * WIDTH).toFixed(1), height: BAR }));
      }
      if (v.ci95Low !== null && v.ci95Low !== undefined && v.ci95High !== null && v.ci95High !== undefined) {
        const lo = LEFT + clamp(v.ci95Low) * WIDTH;
        const hi = LEFT + clamp(v.ci95High) * WIDTH;
        const mid = y + BAR / 2;
        g.append(s('path', {
          class: 'eval-whisker', testid: 'eval-whisker',
          d: `M${lo.toFixed(1)} ${mid}H${hi.toFixed(1)}M${lo.toFixed(1)} ${mid - 5}V${mid + 5}M${hi.toFixed(1)} ${mid - 5}V${mid + 5}`,
        }));
      }
      g.append(s('text', { class: 'eval-value', x: LEFT + WIDTH + 6, y: y + BAR - 3 }, fmt(v.mean)));
      svg.append(g);
    });
  });
  return svg;
}

export function legend(series, h) {
  return h('div', { class: 'eval-legend' }, ...series.map((ser, j) =>
    h('span', { class: 'eval-legend-item' }, h('span', { class: `eval-swatch eval-series-${j % 4}` }), ser.label)));
}

export { fmt as fmtScore };
