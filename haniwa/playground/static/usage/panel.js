// haniwa playground — Usage panel (#/usage).
//
// Reads the invocation log through GET /haniwa/v1/usage (api.getUsage): totals for the chosen range,
// three charts over time per model (requests, tokens, mean latency) drawn with the vendored uPlot, and
// the newest calls in a table. Every model call is logged by the server, whichever API made it (Bedrock
// Converse/InvokeModel, OpenAI chat completions, agents…). Text from the log is rendered with textContent.

import uPlot from '../vendor/uplot/uPlot.esm.js';
import './strings.js';
import { errMessage, h, tx } from '../common/dom.js';
import { definePanel } from '../common/panel.js';
import { fmtCompact, fmtDateTime, fmtInt, fmtMs, num } from '../common/format.js';

const RANGES = [
  ['1h', 3600],
  ['24h', 86400],
  ['7d', 7 * 86400],
];
const RANGE_STORAGE = 'haniwa.usage.range';
const ROW_LIMIT = 200;
const CHART_HEIGHT = 240;
const PALETTE = ['#b4532a', '#2f6fb3', '#3b8f5a', '#8e44ad', '#c0392b', '#16a085', '#d4a017', '#5d6d7e'];
const CHARTS = [
  // key, testid, title key, value of a series row, zero when a model made no call in a bucket
  ['requests', 'usage-chart-requests', 'usage.chartRequests', (s) => s.requests, true],
  ['tokens', 'usage-chart-tokens', 'usage.chartTokens', (s) => (s.input_tokens || 0) + (s.output_tokens || 0), true],
  ['latency', 'usage-chart-latency', 'usage.chartLatency', (s) => s.avg_latency_ms, false],
];

// ---------------------------------------------------------------------------------------------------
// small helpers (the DOM ones are in common/dom.js)

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function alpha(hex, a) {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) return hex;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

// ---------------------------------------------------------------------------------------------------
// panel state

const S = {
  ctx: null,
  range: '24h',
  data: null,       // the last answer of GET /haniwa/v1/usage
  updated: null,    // Date of that answer
  plots: [],        // live uPlot instances
  observer: null,   // ResizeObserver keeping the charts as wide as their cards
  abort: null,
  seq: 0,
  ui: {},
};

export default definePanel({
  stylesheets: [new URL('../vendor/uplot/uPlot.min.css', import.meta.url), new URL('usage.css', import.meta.url)],
  mount,
  show,
});

async function mount(el, ctx) {
  S.ctx = ctx;
  try {
    const saved = localStorage.getItem(RANGE_STORAGE);
    if (RANGES.some(([k]) => k === saved)) S.range = saved;
  } catch (_) { /* storage may be unavailable */ }
  buildUi(el, ctx);
  ctx.onLangChange(() => render());
}

async function show() {
  await refresh();
}

function buildUi(el, ctx) {
  const ui = S.ui;
  el.replaceChildren();
  el.classList.add('usage-panel');

  ui.ranges = {};
  const seg = h('div', { class: 'segmented', role: 'group' });
  seg.dataset.i18nAriaLabel = 'usage.range';
  seg.setAttribute('aria-label', ctx.t('usage.range'));
  for (const [key] of RANGES) {
    const b = tx(ctx, 'button', `usage.range.${key}`, { type: 'button', class: 'btn btn-sm', testid: `usage-range-${key}` });
    b.addEventListener('click', () => setRange(key));
    ui.ranges[key] = b;
    seg.append(b);
  }
  ui.refresh = tx(ctx, 'button', 'usage.refresh', { type: 'button', class: 'btn btn-sm', testid: 'usage-refresh' });
  ui.refresh.addEventListener('click', () => refresh());
  ui.updated = h('span', { class: 'muted small', testid: 'usage-updated', role: 'status' });
  ui.spinner = h('span', { class: 'spinner', hidden: true, 'aria-hidden': 'true' });

  const metric = (key, testid, unit) => {
    const value = h('span', { class: 'value', testid }, '—');
    const card = h('div', { class: 'metric' }, tx(ctx, 'span', key, { class: 'label' }),
      h('span', { class: 'nowrap' }, value, unit ? h('span', { class: 'unit', text: unit }) : null));
    return { card, value };
  };
  const requests = metric('usage.requests', 'usage-total-requests');
  const tokens = metric('usage.tokens', 'usage-total-tokens');
  ui.tokensDetail = h('span', { class: 'unit usage-tokens-detail', testid: 'usage-total-tokens-detail' });
  tokens.card.append(ui.tokensDetail);
  const latency = metric('usage.meanLatency', 'usage-mean-latency', 'ms');
  const errors = metric('usage.errors', 'usage-total-errors');
  ui.totals = { requests: requests.value, tokens: tokens.value, latency: latency.value, errors: errors.value };
  ui.errorsCard = errors.card;

  ui.empty = h('div', { class: 'card empty usage-empty', testid: 'usage-empty', hidden: true },
    h('div', { class: 'usage-empty-mark', 'aria-hidden': 'true' }, '📈'),
    tx(ctx, 'h2', 'usage.emptyTitle'),
    tx(ctx, 'p', 'usage.emptyHint', { class: 'muted' }));
  ui.error = h('div', { class: 'card usage-error', testid: 'usage-error', role: 'alert', hidden: true });

  ui.charts = {};
  const chartCards = CHARTS.map(([key, testid, titleKey]) => {
    const box = h('div', { class: 'usage-chart', testid });
    const legend = h('div', { class: 'usage-legend', testid: `${testid}-legend` });
    const note = h('span', { class: 'muted small usage-bucket' });
    ui.charts[key] = { box, legend, note };
    return h('section', { class: 'card usage-chart-card' },
      h('div', { class: 'card-header' }, tx(ctx, 'h2', titleKey, { class: 'card-title' }), h('span', { class: 'spacer' }), note),
      box, legend);
  });
  ui.chartsWrap = h('div', { class: 'usage-charts' }, chartCards);

  ui.tbody = h('tbody');
  const th = (key, cls) => tx(ctx, 'th', key, { class: cls, scope: 'col' });
  ui.table = h('table', { class: 'table', testid: 'usage-table' },
    h('thead', {}, h('tr', {},
      th('usage.col.time'), th('usage.col.model'), th('usage.col.api'), th('usage.col.in', 'num'),
      th('usage.col.out', 'num'), th('usage.col.latency', 'num'), th('usage.col.ttft', 'num'), th('usage.col.status'))),
    ui.tbody);
  ui.shown = h('span', { class: 'muted small', testid: 'usage-shown' });
  ui.tableCard = h('section', { class: 'card usage-table-card' },
    h('div', { class: 'card-header' }, tx(ctx, 'h2', 'usage.recent', { class: 'card-title' }), h('span', { class: 'spacer' }), ui.shown),
    h('div', { class: 'table-wrap' }, ui.table));

  ui.content = h('div', { class: 'col usage-content' }, ui.chartsWrap, ui.tableCard);

  el.append(h('div', { class: 'panel-pad col usage-main' },
    h('div', { class: 'row usage-toolbar' },
      tx(ctx, 'h1', 'usage.title', { class: 'usage-title' }),
      h('span', { class: 'spacer' }),
      ui.spinner, ui.updated, seg, ui.refresh),
    h('div', { class: 'metrics usage-totals' }, requests.card, tokens.card, latency.card, errors.card),
    ui.error, ui.empty, ui.content));

  if (typeof ResizeObserver === 'function') {
    S.observer = new ResizeObserver(() => resizePlots());
    for (const { box } of Object.values(ui.charts)) S.observer.observe(box);
  }
  markRange();
}

function markRange() {
  for (const [key, b] of Object.entries(S.ui.ranges)) {
    const on = key === S.range;
    b.classList.toggle('active', on);
    b.setAttribute('aria-pressed', on ? 'true' : 'false');
  }
}

function setRange(key) {
  if (key === S.range) return;
  S.range = key;
  try { localStorage.setItem(RANGE_STORAGE, key); } catch (_) { /* ignore */ }
  markRange();
  refresh();
}

// ---------------------------------------------------------------------------------------------------
// loading

async function refresh() {
  const { ctx, ui } = S;
  const span = (RANGES.find(([k]) => k === S.range) || RANGES[1])[1];
  if (S.abort) S.abort.abort();
  const abort = new AbortController();
  S.abort = abort;
  const seq = ++S.seq;
  ui.spinner.hidden = false;
  ui.refresh.disabled = true;
  try {
    const data = await ctx.api.getUsage({ since: Math.floor(Date.now() / 1000 - span), limit: ROW_LIMIT, signal: abort.signal });
    if (seq !== S.seq) return;
    S.data = data || { invocations: [], series: [], bucket_s: 60 };
    S.updated = new Date();
    ui.error.hidden = true;
  } catch (e) {
    if (seq !== S.seq || e.name === 'AbortError') return;
    ui.error.hidden = false;
    ui.error.textContent = ctx.t('usage.loadFailed', { message: errMessage(e) });
    ctx.toast(errMessage(e), 'error');
  } finally {
    if (seq === S.seq) {
      ui.spinner.hidden = true;
      ui.refresh.disabled = false;
      if (S.abort === abort) S.abort = null;
    }
  }
  render();
}

// ---------------------------------------------------------------------------------------------------
// rendering

function totals(series) {
  let requests = 0; let input = 0; let output = 0; let errors = 0; let latSum = 0; let latN = 0;
  for (const s of series) {
    const n = num(s.requests) || 0;
    requests += n;
    input += num(s.input_tokens) || 0;
    output += num(s.output_tokens) || 0;
    errors += num(s.errors) || 0;
    if (num(s.avg_latency_ms) !== null) {
      latSum += s.avg_latency_ms * n;
      latN += n;
    }
  }
  return { requests, input, output, errors, latency: latN ? latSum / latN : null };
}

function render() {
  const { ui, ctx } = S;
  const data = S.data;
  if (!data) return;
  const series = data.series || [];
  const rows = data.invocations || [];
  const tot = totals(series);
  ui.totals.requests.textContent = fmtInt(tot.requests);
  ui.totals.requests.dataset.value = String(tot.requests);
  ui.totals.tokens.textContent = fmtInt(tot.input + tot.output);
  ui.totals.tokens.dataset.value = String(tot.input + tot.output);
  ui.tokensDetail.textContent = ctx.t('usage.tokensDetail', { input: fmtInt(tot.input), output: fmtInt(tot.output) });
  ui.totals.latency.textContent = fmtMs(tot.latency);
  ui.totals.errors.textContent = fmtInt(tot.errors);
  ui.errorsCard.classList.toggle('usage-has-errors', tot.errors > 0);
  ui.updated.textContent = S.updated
    ? ctx.t('usage.updated', { time: S.updated.toLocaleTimeString(ctx.lang()) }) : '';

  const empty = tot.requests === 0 && rows.length === 0;
  ui.empty.hidden = !empty;
  ui.content.hidden = empty;
  destroyPlots();
  if (empty) {
    ui.tbody.replaceChildren();
    return;
  }
  renderCharts(data);
  renderTable(rows, tot.requests);
}

function bucketLabel(seconds) {
  const t = S.ctx.t;
  if (seconds < 3600) return t('usage.min', { n: Math.round(seconds / 60) });
  if (seconds < 86400) return t('usage.hour', { n: Math.round(seconds / 3600) });
  return t('usage.day', { n: Math.round(seconds / 86400) });
}

function destroyPlots() {
  for (const p of S.plots) p.destroy();
  S.plots = [];
}

function renderCharts(data) {
  const { ui, ctx } = S;
  const series = data.series || [];
  const bucket = num(data.bucket_s) || 60;
  const until = num(data.until) || Date.now() / 1000;
  const since = num(data.since) || until - 86400;
  const models = Array.from(new Set(series.map((s) => String(s.model_id)))).sort();
  const colour = (i) => PALETTE[i % PALETTE.length];
  // one x per bucket over the whole range, so quiet periods read as zero
  const xs = [];
  for (let t = Math.floor(since / bucket) * bucket; t <= until; t += bucket) xs.push(t);
  const index = new Map(xs.map((t, i) => [t, i]));
  const muted = cssVar('--text-muted', '#5f6875');
  const grid = cssVar('--border', '#e2e5ea');

  for (const [key, , , pick, zeroFill] of CHARTS) {
    const { box, legend, note } = ui.charts[key];
    const ys = models.map(() => xs.map(() => (zeroFill ? 0 : null)));
    for (const s of series) {
      const i = index.get(num(s.t));
      const m = models.indexOf(String(s.model_id));
      const v = num(pick(s));
      if (i === undefined || m < 0 || v === null) continue;
      ys[m][i] = v;
    }
    note.textContent = ctx.t('usage.bucket', { size: bucketLabel(bucket) });
    legend.replaceChildren(...models.map((m, i) => h('span', { class: 'usage-legend-item' },
      h('span', { class: 'swatch', style: { background: colour(i) }, 'aria-hidden': 'true' }), m)));
    box.replaceChildren();
    const opts = {
      width: Math.max(box.clientWidth, 280),
      height: CHART_HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: {
        x: { time: true, range: () => [xs[0], until] },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
        {
          stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 48,
          values: (u, splits) => splits.map(fmtCompact),
        },
      ],
      series: [{}, ...models.map((m, i) => ({
        label: m,
        stroke: colour(i),
        fill: alpha(colour(i), 0.08),
        width: 2,
        spanGaps: false,
        points: { show: !zeroFill, size: 6, fill: colour(i) },
      }))],
    };
    const plot = new uPlot(opts, [xs, ...ys], box);
    plot.root.setAttribute('role', 'img');
    plot.root.setAttribute('aria-label', `${ctx.t(CHARTS.find((c) => c[0] === key)[2])}: ${models.join(', ')}`);
    S.plots.push(plot);
  }
}

let resizeFrame = 0;

function resizePlots() {
  if (resizeFrame) return;
  resizeFrame = requestAnimationFrame(() => {
    resizeFrame = 0;
    for (const p of S.plots) {
      const box = p.root.parentElement;
      const w = box ? box.clientWidth : 0;
      if (w > 0 && Math.abs(w - p.width) > 1) p.setSize({ width: w, height: CHART_HEIGHT });
    }
  });
}

function renderTable(rows, total) {
  const { ui, ctx } = S;
  ui.tbody.replaceChildren(...rows.map((r) => {
    const model = r.model_id || r.model_requested || '—';
    const modelCell = h('td', { class: 'mono' }, h('span', { text: model }));
    if (r.model_requested && r.model_id && r.model_requested !== r.model_id) {
      modelCell.title = ctx.t('usage.requested', { name: r.model_requested });
      modelCell.append(h('span', { class: 'muted small usage-requested', text: ` ← ${r.model_requested}` }));
    }
    const ok = r.status === 'ok';
    const status = h('span', { class: `badge ${ok ? 'ok' : 'error'}`, text: ok ? 'ok' : (r.error_code || r.status || 'error') });
    return h('tr', { testid: 'usage-row', 'data-status': r.status || '' },
      h('td', { class: 'nowrap', text: fmtDateTime(r.ts, ctx.lang(), { dateStyle: 'short', timeStyle: 'medium' }) }),
      modelCell,
      h('td', { class: 'small', text: [r.surface, r.operation].filter(Boolean).join(' · ') }),
      h('td', { class: 'num', text: fmtInt(r.input_tokens) }),
      h('td', { class: 'num', text: fmtInt(r.output_tokens) }),
      h('td', { class: 'num', text: fmtMs(r.latency_ms) }),
      h('td', { class: 'num', text: fmtMs(r.first_token_ms) }),
      h('td', {}, status));
  }));
  ui.shown.textContent = total > rows.length ? ctx.t('usage.shown', { shown: rows.length, total }) : '';
}
