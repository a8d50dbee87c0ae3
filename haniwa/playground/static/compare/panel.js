// haniwa playground — Compare panel (#/compare, #/compare/<comparisonId>).
//
// One prompt goes to 2–3 chat models at once through the OpenAI-compatible /v1/chat/completions
// (api.streamChat, one request per side, all in parallel). Each column streams its answer, then shows
// time to first token, total latency, token counts and tokens/s; a bar picture puts the sides next to
// each other. A finished run is kept through /haniwa/v1/comparisons, listed newest first, and opens
// read-only at #/compare/<id>. Model and user text is only ever rendered with textContent.
//
// Modules: panel.js (editor, runs, answer columns, history), chart.js (the bar picture), strings.js,
// compare.css.

import './strings.js';
import { onFrame } from '../common/frame.js';
import { errMessage, h, isAbort, readNumbers, tx, writeNumbers } from '../common/dom.js';
import { definePanel } from '../common/panel.js';
import { fmtDateTime, fmtInt, fmtMs, fmtTps, num, relTime } from '../common/format.js';
import { drawChart } from './chart.js';

const MIN_SIDES = 2;
const MAX_SIDES = 3;
const STORAGE = 'haniwa.compare.settings';
const PARAMS = [
  // key, testid, i18n key, input attributes, parser
  ['temperature', 'compare-temperature', 'compare.temperature', { min: '0', max: '2', step: '0.1' }, parseFloat],
  ['max_tokens', 'compare-max-tokens', 'compare.maxTokens', { min: '1', step: '1' }, (v) => parseInt(v, 10)],
];
const METRICS = [
  // field, testid prefix, label key, title key, unit key or literal, formatter
  ['ttft_ms', 'compare-ttft', 'compare.ttft', 'compare.ttftTitle', 'ms', fmtMs],
  ['latency_ms', 'compare-latency', 'compare.latency', 'compare.latencyTitle', 'ms', fmtMs],
  ['input_tokens', 'compare-in', 'compare.in', null, 'compare.tokens', fmtInt],
  ['output_tokens', 'compare-out', 'compare.out', null, 'compare.tokens', fmtInt],
  ['tokens_per_s', 'compare-tps', 'compare.tps', null, null, fmtTps],
];

// ---------------------------------------------------------------------------------------------------
// small helpers (the DOM ones are in common/dom.js)

function setKey(el, key) {
  el.dataset.i18n = key;
  el.textContent = S.ctx.t(key);
}

// ---------------------------------------------------------------------------------------------------
// panel state

const S = {
  ctx: null,
  models: [],        // chat-capable models [{id, name, …}]
  sides: [],         // chosen model ids, 2–3
  history: [],       // saved comparisons, newest first
  mode: 'edit',      // 'edit' (the editor and the latest run) or 'view' (a saved comparison, read-only)
  currentId: null,   // the saved comparison on screen (after a run is saved, or opened from the history)
  view: null,        // the saved comparison shown in 'view' mode
  results: [],       // what the columns show [{model, text, ttft_ms, …, error, state}]
  abort: null,       // AbortController of the running comparison
  busy: false,
  loadSeq: 0,
  ui: {},
};

export default definePanel({
  stylesheets: [new URL('compare.css', import.meta.url)],
  mount,
  show,
});

async function mount(el, ctx) {
  S.ctx = ctx;
  buildUi(el, ctx);
  ctx.onLangChange(() => {
    renderHistory();
    renderPickers();
    renderView();
    renderChart();
  });
  try {
    const all = await ctx.api.listModels();
    S.models = (all || []).filter((m) => m.chat !== false);
  } catch (e) {
    ctx.toast(errMessage(e), 'error');
    S.models = [];
  }
  restoreSettings();
  renderPickers();
  await refreshHistory();
}

async function show(el, ctx, args) {
  const id = (args && args[0]) || null;
  if (id && id === S.currentId) return;   // already on screen (e.g. right after the run was saved)
  if (!id) {
    S.currentId = null;
    if (S.mode === 'view') {
      setMode('edit');
      setResults([]);
    }
    renderHistory();
    if (!S.busy) S.ui.prompt.focus();
    return;
  }
  await openSaved(id);
}

// ---------------------------------------------------------------------------------------------------
// building the UI

function buildUi(el, ctx) {
  const ui = S.ui;
  el.replaceChildren();
  el.classList.add('compare-panel');

  // sidebar: history -----------------------------------------------------------------------------
  ui.newBtn = tx(ctx, 'button', 'compare.new', { type: 'button', class: 'btn btn-primary', testid: 'compare-new' });
  ui.newBtn.addEventListener('click', () => {
    stopRun();
    S.currentId = null;
    setMode('edit');
    setResults([]);
    ui.prompt.value = '';
    setNote('');
    ctx.navigate('#/compare');
    ui.prompt.focus();
  });
  ui.history = h('ul', { class: 'list cmp-history', testid: 'compare-history' });
  ui.historyEmpty = tx(ctx, 'p', 'compare.noHistory', { class: 'muted small cmp-history-empty', testid: 'compare-history-empty' });
  const sidebar = h('aside', { class: 'sidebar cmp-sidebar' },
    ui.newBtn,
    tx(ctx, 'h2', 'compare.history', { class: 'section-title' }),
    ui.history, ui.historyEmpty);

  // editor ---------------------------------------------------------------------------------------
  ui.pickers = h('div', { class: 'cmp-pickers' });
  ui.addModel = tx(ctx, 'button', 'compare.addModel', { type: 'button', class: 'btn btn-ghost btn-sm', testid: 'compare-add-model' });
  ui.addModel.addEventListener('click', addSide);

  ui.system = h('textarea', { id: 'compare-system', testid: 'compare-system', rows: '2' });
  ui.system.dataset.i18nPlaceholder = 'compare.systemPlaceholder';
  ui.system.placeholder = ctx.t('compare.systemPlaceholder');
  ui.system.addEventListener('change', saveSettings);

  ui.params = {};
  const paramFields = PARAMS.map(([key, testid, label, attrs]) => {
    const input = h('input', { id: testid, testid, type: 'number', inputmode: 'decimal', ...attrs });
    input.dataset.i18nPlaceholder = 'compare.default';
    input.placeholder = ctx.t('compare.default');
    input.addEventListener('change', saveSettings);
    ui.params[key] = input;
    return h('div', { class: 'field cmp-param' }, tx(ctx, 'label', label, { for: testid }), input);
  });

  ui.prompt = h('textarea', { id: 'compare-prompt', testid: 'compare-prompt', rows: '3', 'data-autofocus': true });
  ui.prompt.dataset.i18nPlaceholder = 'compare.promptPlaceholder';
  ui.prompt.placeholder = ctx.t('compare.promptPlaceholder');
  ui.prompt.addEventListener('keydown', onPromptKey);

  ui.run = tx(ctx, 'button', 'compare.run', { type: 'submit', class: 'btn btn-primary', testid: 'compare-run' });
  ui.stop = tx(ctx, 'button', 'compare.stop', { type: 'button', class: 'btn btn-danger', testid: 'compare-stop', hidden: true });
  ui.stop.addEventListener('click', stopRun);
  ui.note = h('span', { class: 'muted small cmp-note', testid: 'compare-note', role: 'status' });

  ui.editor = h('form', { class: 'card cmp-editor', testid: 'compare-editor' },
    h('div', { class: 'field' },
      tx(ctx, 'span', 'compare.models', { class: 'label' }),
      h('div', { class: 'row cmp-models-row' }, ui.pickers, ui.addModel)),
    h('div', { class: 'cmp-settings' },
      h('div', { class: 'field cmp-system-field' }, tx(ctx, 'label', 'compare.system', { for: 'compare-system' }), ui.system),
      paramFields),
    h('div', { class: 'field' }, tx(ctx, 'label', 'compare.prompt', { for: 'compare-prompt' }), ui.prompt),
    h('div', { class: 'row' },
      tx(ctx, 'span', 'compare.runHint', { class: 'muted small cmp-hint' }),
      ui.note,
      h('span', { class: 'spacer' }),
      ui.stop, ui.run));
  ui.editor.addEventListener('submit', (ev) => { ev.preventDefault(); run(); });

  // read-only summary of a saved comparison --------------------------------------------------------
  ui.view = h('section', { class: 'card cmp-view', testid: 'compare-view', hidden: true });

  // chart and columns ----------------------------------------------------------------------------
  ui.chart = h('section', { class: 'card cmp-chart', testid: 'compare-chart', hidden: true });
  ui.empty = tx(ctx, 'p', 'compare.empty', { class: 'empty cmp-empty', testid: 'compare-empty' });
  ui.cols = h('div', { class: 'cmp-cols', testid: 'compare-cols', role: 'region' });
  ui.cols.dataset.i18nAriaLabel = 'compare.answers';
  ui.cols.setAttribute('aria-label', ctx.t('compare.answers'));

  const main = h('div', { class: 'main' },
    h('div', { class: 'panel-pad col cmp-main' }, ui.editor, ui.view, ui.chart, ui.empty, ui.cols));
  el.append(h('div', { class: 'sidebar-layout cmp-layout' }, sidebar, main));
}

function onPromptKey(ev) {
  if (ev.isComposing || ev.keyCode === 229) return;   // IME conversion (Japanese input)
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
    ev.preventDefault();
    run();
  } else if (ev.key === 'Escape' && S.busy) {
    ev.preventDefault();
    stopRun();
  }
}

function setNote(text) {
  S.ui.note.textContent = text;
}

function setMode(mode) {
  S.mode = mode;
  S.ui.editor.hidden = mode !== 'edit';
  S.ui.view.hidden = mode !== 'view';
  if (mode !== 'view') S.view = null;
}

// ---------------------------------------------------------------------------------------------------
// models and settings

function restoreSettings() {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(STORAGE) || 'null'); } catch (_) { saved = null; }
  const ids = S.models.map((m) => m.id);
  const sides = (saved && Array.isArray(saved.sides) ? saved.sides : []).filter((id) => ids.includes(id));
  for (const id of ids) {
    if (sides.length >= MIN_SIDES) break;
    if (!sides.includes(id)) sides.push(id);
  }
  S.sides = sides.slice(0, MAX_SIDES);
  S.ui.system.value = (saved && typeof saved.system === 'string') ? saved.system : '';
  writeNumbers(PARAMS, S.ui.params, (saved && saved.params) || {});
}

function saveSettings() {
  try {
    localStorage.setItem(STORAGE, JSON.stringify({ sides: S.sides, system: S.ui.system.value, params: readNumbers(PARAMS, S.ui.params) }));
  } catch (_) { /* storage may be unavailable */ }
}

function modelLabel(m) {
  return m.name && m.name !== m.id ? `${m.id} — ${m.name}` : m.id;
}

function renderPickers() {
  const { ui, ctx } = { ui: S.ui, ctx: S.ctx };
  if (!ui.pickers) return;
  ui.pickers.replaceChildren();
  S.sides.forEach((id, i) => {
    const sel = h('select', { id: `compare-model-${i}`, testid: `compare-model-${i}`, class: 'cmp-select' });
    if (id && !S.models.some((m) => m.id === id)) sel.append(h('option', { value: id, text: id }));
    for (const m of S.models) sel.append(h('option', { value: m.id, text: modelLabel(m) }));
    if (!sel.options.length) sel.append(h('option', { value: '', text: ctx.t('compare.noModels') }));
    sel.value = id || '';
    sel.disabled = S.busy;
    sel.addEventListener('change', () => {
      S.sides[i] = sel.value;
      saveSettings();
    });
    const label = h('label', { class: 'cmp-picker-label', for: `compare-model-${i}` },
      h('span', { class: `cmp-dot cmp-c${i}`, 'aria-hidden': 'true' }),
      ctx.t('compare.side', { n: i + 1 }));
    const picker = h('div', { class: 'cmp-picker', testid: `compare-picker-${i}` }, label, sel);
    if (i >= MIN_SIDES) {
      const rm = h('button', { type: 'button', class: 'btn btn-ghost btn-sm btn-icon', testid: `compare-remove-model-${i}` }, '×');
      rm.title = ctx.t('compare.removeModel');
      rm.setAttribute('aria-label', ctx.t('compare.removeModel'));
      rm.disabled = S.busy;
      rm.addEventListener('click', () => removeSide(i));
      picker.append(rm);
    }
    ui.pickers.append(picker);
  });
  ui.addModel.hidden = S.sides.length >= MAX_SIDES;
  ui.addModel.disabled = S.busy;
}

function addSide() {
  if (S.sides.length >= MAX_SIDES) return;
  const next = S.models.find((m) => !S.sides.includes(m.id)) || S.models[0];
  S.sides.push(next ? next.id : '');
  saveSettings();
  renderPickers();
  const sel = document.getElementById(`compare-model-${S.sides.length - 1}`);
  if (sel) sel.focus();
}

function removeSide(i) {
  if (S.sides.length <= MIN_SIDES) return;
  S.sides.splice(i, 1);
  saveSettings();
  renderPickers();
  S.ui.addModel.focus();
}

// ---------------------------------------------------------------------------------------------------
// running a comparison

function setBusy(busy) {
  S.busy = busy;
  S.ui.run.hidden = busy;
  S.ui.run.disabled = busy;
  S.ui.stop.hidden = !busy;
  S.ui.newBtn.disabled = false;
  renderPickers();
}

function stopRun() {
  if (S.abort) S.abort.abort();
}

async function run() {
  const { ui, ctx } = S;
  if (S.busy || S.mode !== 'edit') return;
  const prompt = ui.prompt.value.trim();
  if (!prompt) {
    ui.prompt.focus();
    return;
  }
  const models = S.sides.filter((id) => id);
  if (models.length < MIN_SIDES) {
    ctx.toast(ctx.t(S.models.length ? 'compare.needTwo' : 'compare.noModels'), 'error');
    return;
  }
  const system = ui.system.value;
  const params = readNumbers(PARAMS, S.ui.params);
  saveSettings();
  if (S.currentId) {
    S.currentId = null;
    ctx.navigate('#/compare', { replace: true });
  }
  const abort = new AbortController();
  S.abort = abort;
  setBusy(true);
  setNote('');
  setResults(models.map((model) => ({
    model, text: '', ttft_ms: null, latency_ms: null, input_tokens: null, output_tokens: null,
    tokens_per_s: null, error: null, state: 'streaming',
  })));
  const results = S.results;
  const messages = [];
  if (system.trim()) messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content: prompt });

  await Promise.all(results.map((r, i) => runSide(r, i, { model: r.model, messages, ...params }, abort)));

  if (S.abort === abort) S.abort = null;
  setBusy(false);
  if (abort.signal.aborted) {
    if (S.results === results) setNote(ctx.t('compare.notSaved'));
    return;
  }
  try {
    const saved = await ctx.api.comparisons.create({
      prompt,
      system: system.trim() ? system : null,
      params,
      results: results.map(toSaved),
    });
    if (S.results === results && S.mode === 'edit') {
      S.currentId = saved.id;
      setNote(ctx.t('compare.saved'));
      ctx.navigate(`#/compare/${encodeURIComponent(saved.id)}`, { replace: true });
    }
  } catch (e) {
    ctx.toast(ctx.t('compare.saveFailed', { message: errMessage(e) }), 'error');
  }
  await refreshHistory();
}

async function runSide(r, i, body, abort) {
  try {
    const paint = onFrame(() => {
      if (r.state === 'streaming') setColumnText(i, r); // after the end, updateColumn() has the final text
    });
    const res = await S.ctx.api.streamChat(body, {
      signal: abort.signal,
      onDelta: (soFar) => {
        r.text = soFar;
        paint();
      },
    });
    const usage = res.usage || {};
    r.text = res.text;
    r.ttft_ms = round1(res.ttftMs);
    r.latency_ms = round1(res.latencyMs);
    r.input_tokens = num(usage.prompt_tokens);
    r.output_tokens = num(usage.completion_tokens);
    r.tokens_per_s = round1(res.tokensPerSecond);
    r.state = 'done';
  } catch (e) {
    if (isAbort(e) || abort.signal.aborted) {
      r.state = 'stopped';
    } else {
      r.state = 'error';
      r.error = errMessage(e);
    }
  }
  if (S.results.includes(r)) {
    updateColumn(i, r);
    markFastest();
    renderChart();
  }
}

function round1(v) {
  const n = num(v);
  return n === null ? null : Math.round(n * 10) / 10;
}

function toSaved(r) {
  return {
    model: r.model,
    text: r.text,
    ttft_ms: r.ttft_ms,
    latency_ms: r.latency_ms,
    input_tokens: r.input_tokens === null ? null : Math.round(r.input_tokens),
    output_tokens: r.output_tokens === null ? null : Math.round(r.output_tokens),
    tokens_per_s: r.tokens_per_s,
    error: r.error,
  };
}

function fromSaved(r) {
  const out = {
    model: String(r.model || ''),
    text: typeof r.text === 'string' ? r.text : '',
    ttft_ms: num(r.ttft_ms),
    latency_ms: num(r.latency_ms),
    input_tokens: num(r.input_tokens),
    output_tokens: num(r.output_tokens),
    tokens_per_s: num(r.tokens_per_s),
    error: r.error ? String(r.error) : null,
  };
  out.state = out.error ? 'error' : 'done';
  return out;
}

// ---------------------------------------------------------------------------------------------------
// columns

function setResults(results) {
  S.results = results;
  const { ui } = S;
  ui.cols.replaceChildren(...results.map((r, i) => buildColumn(r, i)));
  ui.cols.style.setProperty('--cmp-n', String(Math.max(results.length, 1)));
  ui.empty.hidden = results.length > 0 || S.mode === 'view';
  markFastest();
  renderChart();
}

function buildColumn(r, i) {
  const ctx = S.ctx;
  const badge = h('span', { class: 'badge cmp-state', testid: `compare-state-${i}` });
  const fastest = tx(ctx, 'span', 'compare.fastest', { class: 'badge ok cmp-fastest', testid: `compare-fastest-${i}`, hidden: true });
  const text = h('div', { class: 'cmp-text pre', testid: `compare-text-${i}` });
  const error = h('div', { class: 'cmp-error', testid: `compare-error-${i}`, role: 'alert', hidden: true },
    tx(ctx, 'strong', 'compare.errorLabel'), ' ', h('span', { class: 'cmp-error-message' }));
  const metrics = h('div', { class: 'cmp-metrics' }, METRICS.map(([field, prefix, labelKey, titleKey, unit]) => {
    const label = tx(ctx, 'span', labelKey, { class: 'label' });
    const value = h('span', { class: 'value', testid: `${prefix}-${i}` }, '—');
    const unitEl = unit ? (unit.startsWith('compare.') ? tx(ctx, 'span', unit, { class: 'unit' }) : h('span', { class: 'unit', text: unit })) : null;
    const m = h('div', { class: 'metric cmp-metric', 'data-field': field }, label, h('span', { class: 'nowrap' }, value, unitEl));
    if (titleKey) {
      m.dataset.i18nTitle = titleKey;
      m.title = ctx.t(titleKey);
    }
    return m;
  }));
  const col = h('article', { class: `card cmp-col cmp-c${i}`, testid: `compare-col-${i}`, 'data-model': r.model },
    h('header', { class: 'cmp-col-head' },
      h('span', { class: `cmp-dot cmp-c${i}`, 'aria-hidden': 'true' }),
      h('span', { class: 'cmp-col-model truncate mono', testid: `compare-col-model-${i}`, text: r.model, title: r.model }),
      h('span', { class: 'spacer' }), fastest, badge),
    text, error, metrics);
  updateColumn(i, r, col);
  return col;
}

function column(i) {
  return S.ui.cols.querySelector(`[data-testid="compare-col-${i}"]`);
}

function setColumnText(i, r) {
  const col = column(i);
  if (!col) return;
  col.querySelector('.cmp-text').textContent = r.text;
}

function updateColumn(i, r, col = column(i)) {
  if (!col) return;
  col.dataset.state = r.state;
  col.setAttribute('aria-busy', r.state === 'streaming' ? 'true' : 'false');
  col.querySelector('.cmp-text').textContent = r.text;
  const badge = col.querySelector('.cmp-state');
  setKey(badge, `compare.state.${r.state}`);
  badge.className = `badge cmp-state ${{ done: 'ok', error: 'error', stopped: 'warn', streaming: 'accent' }[r.state] || ''}`;
  const error = col.querySelector('.cmp-error');
  error.hidden = !r.error;
  error.querySelector('.cmp-error-message').textContent = r.error || '';
  for (const [field, prefix, , , , fmt] of METRICS) {
    const v = col.querySelector(`[data-testid="${prefix}-${i}"]`);
    v.textContent = fmt(r[field]);
    if (num(r[field]) === null) delete v.dataset.value;
    else v.dataset.value = String(r[field]);
  }
}

function markFastest() {
  const done = S.results.filter((r) => r.state === 'done' && num(r.latency_ms) !== null);
  const best = done.length >= 2 && S.results.every((r) => r.state !== 'streaming')
    ? done.reduce((a, b) => (b.latency_ms < a.latency_ms ? b : a)) : null;
  S.results.forEach((r, i) => {
    const col = column(i);
    if (col) col.querySelector('.cmp-fastest').hidden = r !== best;
  });
}

// ---------------------------------------------------------------------------------------------------
// the side-by-side picture (chart.js)

function renderChart() {
  if (S.ui.chart) drawChart(S.ctx, S.ui.chart, S.results);
}

// ---------------------------------------------------------------------------------------------------
// saved comparisons: history and read-only view

async function refreshHistory() {
  try {
    S.history = await S.ctx.api.comparisons.list(50);
  } catch (e) {
    S.ctx.toast(errMessage(e), 'error');
    return;
  }
  renderHistory();
}

function renderHistory() {
  const { ui, ctx } = S;
  if (!ui.history) return;
  if (ui.history.querySelector('[data-editing="true"]')) return;   // a delete is being confirmed
  ui.history.replaceChildren();
  ui.historyEmpty.hidden = S.history.length > 0;
  for (const c of S.history) {
    const li = h('li', { class: 'cmp-history-item', testid: 'compare-history-item', 'data-id': c.id });
    const active = c.id === S.currentId;
    const models = (c.results || []).map((r) => r.model).join(' · ');
    const link = h('a', {
      class: `list-item${active ? ' active' : ''}`, href: `#/compare/${encodeURIComponent(c.id)}`,
      'aria-current': active ? 'true' : null,
    }, h('span', { class: 'body' },
      h('span', { class: 'title', text: c.prompt || '—', title: c.prompt || '' }),
      h('span', { class: 'meta', text: models, title: models }),
      h('span', { class: 'meta', text: relTime(ctx, c.created), title: fmtDateTime(c.created, ctx.lang()) })));
    const del = h('button', { type: 'button', class: 'btn btn-ghost btn-sm btn-icon cmp-history-delete', testid: 'compare-history-delete' }, '×');
    del.dataset.i18nTitle = 'compare.delete';
    del.dataset.i18nAriaLabel = 'compare.delete';
    del.title = ctx.t('compare.delete');
    del.setAttribute('aria-label', ctx.t('compare.delete'));
    del.addEventListener('click', (ev) => { ev.preventDefault(); ev.stopPropagation(); confirmDelete(li, c); });
    li.append(link, del);
    ui.history.append(li);
  }
}

function confirmDelete(li, c) {
  const ctx = S.ctx;
  li.dataset.editing = 'true';
  const yes = tx(ctx, 'button', 'compare.delete', { type: 'button', class: 'btn btn-danger btn-sm', testid: 'compare-delete-confirm' });
  const no = tx(ctx, 'button', 'compare.cancel', { type: 'button', class: 'btn btn-sm', testid: 'compare-delete-cancel' });
  const close = () => { delete li.dataset.editing; renderHistory(); };
  no.addEventListener('click', close);
  li.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') close(); });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    try {
      await ctx.api.comparisons.remove(c.id);
      ctx.toast(ctx.t('compare.deleted'), 'ok');
      if (S.currentId === c.id) {
        S.currentId = null;
        if (S.mode === 'view') {
          setMode('edit');
          setResults([]);
        }
        setNote('');
        ctx.navigate('#/compare', { replace: true });
      }
    } catch (e) {
      ctx.toast(errMessage(e), 'error');
    }
    delete li.dataset.editing;
    await refreshHistory();
  });
  li.replaceChildren(h('div', { class: 'cmp-confirm', role: 'alertdialog' },
    tx(ctx, 'span', 'compare.deleteConfirm', { class: 'small' }),
    h('div', { class: 'row' }, yes, no)));
  no.focus();
}

async function openSaved(id) {
  const ctx = S.ctx;
  stopRun();
  const seq = ++S.loadSeq;
  let c;
  try {
    c = await ctx.api.comparisons.get(id);
  } catch (e) {
    if (seq !== S.loadSeq) return;
    ctx.toast(ctx.t('compare.loadFailed', { message: errMessage(e) }), 'error');
    ctx.navigate('#/compare', { replace: true });
    return;
  }
  if (seq !== S.loadSeq) return;
  S.currentId = c.id;
  setMode('view');
  S.view = c;
  renderView();
  setResults((c.results || []).map(fromSaved));
  renderHistory();
}

function renderView() {
  const { ui, ctx } = S;
  const c = S.view;
  if (!c || S.mode !== 'view') return;
  const params = c.params || {};
  const paramText = PARAMS.filter(([key]) => params[key] !== undefined && params[key] !== null)
    .map(([key, , label]) => `${ctx.t(label)} ${params[key]}`).join(' · ') || ctx.t('compare.default');
  const reuse = h('button', { type: 'button', class: 'btn btn-sm', testid: 'compare-reuse', text: ctx.t('compare.reuse') });
  reuse.addEventListener('click', () => reuseSettings(c));
  ui.view.replaceChildren(
    h('div', { class: 'card-header' },
      h('h2', { class: 'card-title', text: ctx.t('compare.viewTitle') }),
      h('span', { class: 'muted small', text: fmtDateTime(c.created, ctx.lang()) }),
      h('span', { class: 'spacer' }), reuse),
    h('dl', { class: 'cmp-view-list' },
      h('dt', { text: ctx.t('compare.viewPrompt') }),
      h('dd', { class: 'pre', testid: 'compare-view-prompt', text: c.prompt }),
      h('dt', { text: ctx.t('compare.viewSystem') }),
      h('dd', { class: `pre${c.system ? '' : ' muted'}`, testid: 'compare-view-system', text: c.system || ctx.t('compare.none') }),
      h('dt', { text: ctx.t('compare.viewParams') }),
      h('dd', { class: 'mono small', testid: 'compare-view-params', text: paramText })));
}

function reuseSettings(c) {
  const { ui, ctx } = S;
  const models = (c.results || []).map((r) => r.model).filter(Boolean).slice(0, MAX_SIDES);
  while (models.length < MIN_SIDES && S.models.length) {
    const next = S.models.find((m) => !models.includes(m.id));
    if (!next) break;
    models.push(next.id);
  }
  S.sides = models;
  ui.system.value = c.system || '';
  writeNumbers(PARAMS, S.ui.params, c.params || {});
  ui.prompt.value = c.prompt || '';
  saveSettings();
  S.currentId = null;
  setMode('edit');
  setResults([]);
  renderPickers();
  setNote('');
  ctx.navigate('#/compare');
  ui.prompt.focus();
}
