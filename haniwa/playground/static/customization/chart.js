// haniwa playground — the Customization panel's loss curve: plain SVG, no library.
//
// lossChart(ctx, steps, validation) → an <svg> of training loss against step (a polyline with one
// <circle data-step> per point) and, when the job measured one, the validation loss as a marked point
// at the step it was measured. steps are the REST route's lossCurve rows [step, epoch, loss, perplexity].
// Colours come from customization.css (classes only; the page's CSP allows no inline styles).

import { fmtCompact } from '../common/format.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 240;
const PAD = { left: 48, right: 16, top: 14, bottom: 30 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'testid') el.setAttribute('data-testid', v);
    else if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function fmtLoss(v) {
  return v >= 10 ? v.toFixed(1) : v.toFixed(3);
}

export function lossChart(ctx, steps, validation) {
  const pts = (steps || []).filter((r) => Number.isFinite(r[0]) && Number.isFinite(r[2]));
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'cust-chart', role: 'img', testid: 'cust-chart',
    'aria-label': ctx.t('cust.chart.label'),
  });
  root.dataset.points = String(pts.length);
  if (!pts.length) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'cust-chart-empty' },
      ctx.t('cust.chart.empty')));
    return root;
  }
  const lastStep = Math.max(...pts.map((r) => r[0]), validation ? validation.step : 0);
  const losses = pts.map((r) => r[2]).concat(validation ? [validation.loss] : []);
  let lo = Math.min(...losses);
  let hi = Math.max(...losses);
  if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
  const x0 = Math.min(...pts.map((r) => r[0]));
  const xs = (s) => PAD.left + (lastStep === x0 ? 0.5 : (s - x0) / (lastStep - x0)) * (W - PAD.left - PAD.right);
  const ys = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);

  // axes and ticks
  const axes = svg('g', { class: 'cust-chart-axes' });
  axes.append(svg('line', { x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }));
  axes.append(svg('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }));
  for (let i = 0; i <= 4; i += 1) {
    const v = lo + ((hi - lo) * i) / 4;
    axes.append(svg('text', { x: PAD.left - 6, y: ys(v) + 4, 'text-anchor': 'end' }, fmtLoss(v)));
    axes.append(svg('line', { class: 'cust-chart-grid', x1: PAD.left, y1: ys(v), x2: W - PAD.right, y2: ys(v) }));
  }
  const ticks = Math.min(6, lastStep - x0 + 1);
  for (let i = 0; i < ticks; i += 1) {
    const s = Math.round(x0 + ((lastStep - x0) * i) / Math.max(ticks - 1, 1));
    axes.append(svg('text', { x: xs(s), y: H - PAD.bottom + 16, 'text-anchor': 'middle' }, fmtCompact(s)));
  }
  axes.append(svg('text', { x: W - PAD.right, y: H - 2, 'text-anchor': 'end', class: 'cust-chart-title' },
    ctx.t('cust.chart.step')));
  root.append(axes);

  // training loss
  const line = pts.map((r) => `${xs(r[0]).toFixed(1)},${ys(r[2]).toFixed(1)}`).join(' ');
  root.append(svg('polyline', { points: line, class: 'cust-chart-train', testid: 'cust-chart-train' }));
  const dots = svg('g', { class: 'cust-chart-dots' });
  for (const r of pts) {
    const c = svg('circle', { cx: xs(r[0]).toFixed(1), cy: ys(r[2]).toFixed(1), r: pts.length > 60 ? 1.5 : 3 });
    c.setAttribute('data-step', String(r[0]));
    c.append(svg('title', {}, `${ctx.t('cust.chart.step')} ${r[0]} · ${ctx.t('cust.chart.train')} ${fmtLoss(r[2])}`));
    dots.append(c);
  }
  root.append(dots);

  // validation loss (measured once, at the end of training)
  if (validation) {
    const v = svg('circle', {
      cx: xs(validation.step).toFixed(1), cy: ys(validation.loss).toFixed(1), r: 5,
      class: 'cust-chart-valid', testid: 'cust-chart-valid',
    });
    v.append(svg('title', {}, `${ctx.t('cust.chart.valid')} ${fmtLoss(validation.loss)}`));
    root.append(v);
  }

  // legend
  const legend = svg('g', { class: 'cust-chart-legend' });
  legend.append(svg('line', { x1: W - 220, y1: PAD.top + 4, x2: W - 200, y2: PAD.top + 4, class: 'cust-chart-train' }));
  legend.append(svg('text', { x: W - 195, y: PAD.top + 8 }, ctx.t('cust.chart.train')));
  if (validation) {
    legend.append(svg('circle', { cx: W - 110, cy: PAD.top + 4, r: 4, class: 'cust-chart-valid' }));
    legend.append(svg('text', { x: W - 100, y: PAD.top + 8 }, ctx.t('cust.chart.valid')));
  }
  root.append(legend);
  return root;
}
