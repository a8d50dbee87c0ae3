// haniwa playground — Evaluation panel (#/evaluation).
//
// Follows evaluation jobs through the same APIs the SDKs and the CLI use: the job list is Bedrock's
// ListEvaluationJobs (GET /evaluation-jobs); each job's progress, failures and per-metric means with
// their bootstrap 95% intervals come from GET /haniwa/v1/evaluation-jobs/{id}; its scored records (with
// the judge's explanations) from GET /haniwa/v1/evaluation-jobs/{id}/records; two jobs are compared with
// GET /haniwa/v1/evaluation-jobs/{a}/compare/{b} (paired difference, its interval, the verdict). While a
// job is active the list is polled once a second. Human-evaluation jobs open the rating view (rating.js).
// Every text from the server is rendered with textContent.

import './strings.js';
import { errMessage, h, tx } from '../common/dom.js';
import { definePanel } from '../common/panel.js';
import { fmtDateTime, fmtInt } from '../common/format.js';
import { fmtScore, intervalChart, legend } from './chart.js';
import { ratingView } from './rating.js';

const ACTIVE = ['InProgress', 'Stopping'];
const POLL_MS = 1000;
const PAGE = 50;

const S = { ctx: null, ui: {}, timer: null, progress: new Map(), jobs: [], seq: 0, open: null };

export function jobId(arn) { return String(arn).split('/').pop(); }

async function progressOf(id) {
  const p = await S.ctx.api.request('GET', `/haniwa/v1/evaluation-jobs/${encodeURIComponent(id)}`);
  S.progress.set(id, p);
  return p;
}

function row(job) {
  const ctx = S.ctx;
  const id = jobId(job.jobArn);
  const p = S.progress.get(id) || {};
  const total = p.total || 0;
  const done = p.done || 0;
  const bar = h('progress', { class: 'eval-progress', max: String(Math.max(total, 1)), value: String(done), testid: 'eval-progress' });
  if (!total && ACTIVE.includes(job.status)) bar.removeAttribute('value');
  const open = h('button', { class: 'btn btn-small', type: 'button', testid: 'eval-open', onclick: () => openJob(id) }, ctx.t('eval.open'));
  return h('tr', { testid: 'eval-row', class: S.open === id ? 'eval-selected' : '', dataset: { job: id, status: job.status } },
    h('td', {}, h('strong', { testid: 'eval-name' }, job.jobName), h('div', { class: 'muted small mono' }, id)),
    h('td', {}, h('span', { class: `eval-status-${job.status}`, testid: 'eval-status' }, job.status),
      h('div', { class: 'muted small' }, `${job.jobType} · ${job.applicationType}`)),
    h('td', {}, bar, ' ', h('span', { testid: 'eval-done' }, `${fmtInt(done)} / ${fmtInt(total)}`),
      h('span', { class: 'eval-message muted small', testid: 'eval-message' }, p.message || '')),
    h('td', { class: 'small' }, (job.evaluationTaskTypes || []).join(', ')),
    h('td', { class: 'small' }, fmtDateTime(job.creationTime, ctx.lang())),
    h('td', {}, open));
}

function fillCompareSelects() {
  const { a, b } = S.ui.compare;
  const done = S.jobs.filter((j) => j.status === 'Completed');
  for (const sel of [a, b]) {
    const keep = sel.value;
    sel.replaceChildren(...done.map((j) => h('option', { value: jobId(j.jobArn) }, `${j.jobName} (${jobId(j.jobArn)})`)));
    if (done.some((j) => jobId(j.jobArn) === keep)) sel.value = keep;
  }
  if (!b.dataset.touched && done.length > 1 && a.value === b.value) b.selectedIndex = 1;
  S.ui.compareForm.hidden = done.length < 2;
}

async function refresh() {
  const ctx = S.ctx;
  const seq = ++S.seq;
  let jobs;
  try {
    jobs = (await ctx.api.request('GET', '/evaluation-jobs?maxResults=100')).jobSummaries || [];
    for (const j of jobs) {
      const id = jobId(j.jobArn);
      const known = S.progress.get(id);
      if (!known || ACTIVE.includes(j.status) || known.status !== j.status) await progressOf(id);
    }
  } catch (e) {
    S.ui.error.textContent = ctx.t('eval.loadFailed', { message: errMessage(e) });
    S.ui.error.hidden = false;
    return;
  }
  if (seq !== S.seq) return;
  S.jobs = jobs;
  S.ui.error.hidden = true;
  S.ui.body.replaceChildren(...jobs.map(row));
  S.ui.empty.hidden = jobs.length > 0;
  S.ui.table.hidden = jobs.length === 0;
  fillCompareSelects();
  clearTimeout(S.timer);
  if (jobs.some((j) => ACTIVE.includes(j.status))) S.timer = setTimeout(refresh, POLL_MS);
  if (S.open) {
    const j = jobs.find((x) => jobId(x.jobArn) === S.open);
    if (j && S.ui.detail.dataset.status !== j.status) renderDetail(S.open);
  }
}

// noise: the result's judgeNoise ({metric: {meanStd, disagreement, count}}), present when the job sampled
// its judge more than once (HANIWA_EVAL_JUDGE_SAMPLES / --judge-samples): then a "judge noise" column
function noiseText(n) {
  return n ? `sd ${fmtScore(n.meanStd)} · ${Math.round((n.disagreement || 0) * 100)}%` : '—';
}

function metricTable(metrics, noise) {
  const ctx = S.ctx;
  const cols = ['metric', 'mean', 'interval', 'count', ...(noise ? ['noise'] : [])];
  return h('table', { class: 'table', testid: 'eval-metrics' },
    h('thead', {}, h('tr', {}, ...cols.map((c) => tx(ctx, 'th', `eval.col.${c}`)))),
    h('tbody', {}, ...Object.keys(metrics).sort().map((m) => {
      const v = metrics[m];
      return h('tr', { testid: 'eval-metric', dataset: { metric: m } },
        h('td', {}, m), h('td', { testid: 'eval-mean' }, fmtScore(v.mean)),
        h('td', { testid: 'eval-interval' }, `[${fmtScore(v.ci95Low)}, ${fmtScore(v.ci95High)}]`),
        h('td', {}, fmtInt(v.count || 0)),
        ...(noise ? [h('td', { testid: 'eval-noise', title: ctx.t('eval.noiseHelp') }, noiseText(noise[m]))] : []));
    })));
}

function explanations(sc) {
  const out = (sc.evaluatorDetails || []).map((d) => `${d.modelIdentifier}: ${d.explanation || ''}`);
  if (sc.explanation) out.push(sc.explanation);
  if (sc.rating !== undefined) out.push(`${S.ctx.t('eval.ratedAs')} ${sc.rating}`);
  if (sc.error) out.push(`error: ${sc.error}`);
  return out.join('\n');
}

function promptOf(rec) {
  if (rec.prompt) return rec.prompt;
  const turn = (rec.conversationTurns || [])[0];
  return turn && turn.prompt && turn.prompt.content && turn.prompt.content[0] ? turn.prompt.content[0].text : '';
}

function recordRow(r) {
  const ctx = S.ctx;
  const line = r.line || {};
  const rec = line.inputRecord || {};
  const resp = line.error ? `error: ${line.error}` : ((line.modelResponses || [])[0] || {}).response
    || (line.retrievedPassages || []).map((p) => p.content.text).join('\n---\n');
  const scores = ((line.automatedEvaluationResult || line.humanEvaluationResult || {}).scores || []);
  const cites = (line.citations || []).map((c) => h('div', { class: 'eval-record', testid: 'eval-citation' },
    h('strong', {}, ctx.t('eval.cited')), ' ', (c.generatedResponsePart || {}).text || '',
    ...(c.retrievedReferences || []).map((r) => h('div', { class: 'eval-explain' }, `↳ ${(r.content || {}).text || ''}`))));
  const detail = h('tr', { class: 'eval-drill', testid: 'eval-drill', hidden: true },
    h('td', { colspan: '4' }, ...scores.map((sc) => h('div', { class: 'eval-record' },
      h('strong', {}, `${sc.metricName}: ${fmtScore(sc.result)}`),
      h('div', { class: 'eval-explain', testid: 'eval-explanation' }, explanations(sc) || ctx.t('eval.noExplanation')))), ...cites));
  const toggle = h('button', { class: 'btn btn-small', type: 'button', testid: 'eval-record-toggle',
    onclick: () => { detail.hidden = !detail.hidden; } }, ctx.t('eval.details'));
  const main = h('tr', { testid: 'eval-record', dataset: { source: r.source, record: String(r.record) } },
    h('td', {}, h('pre', { class: 'eval-text' }, promptOf(rec))),
    h('td', {}, h('pre', { class: 'eval-text', testid: 'eval-response' }, resp || '')),
    h('td', { class: 'small' }, scores.map((sc) => `${sc.metricName} ${fmtScore(sc.result)}`).join('\n')),
    h('td', {}, toggle));
  return [main, detail];
}

async function loadRecords(id, offset, into, more) {
  const res = await S.ctx.api.request('GET', `/haniwa/v1/evaluation-jobs/${encodeURIComponent(id)}/records?offset=${offset}&limit=${PAGE}`);
  into.append(...res.records.flatMap(recordRow));
  more.hidden = res.nextOffset === null || res.nextOffset === undefined;
  more.onclick = () => loadRecords(id, res.nextOffset, into, more);
}

async function renderDetail(id) {
  const ctx = S.ctx;
  const d = S.ui.detail;
  let p;
  try { p = await progressOf(id); } catch (e) { ctx.toast(errMessage(e), 'error'); return; }
  d.dataset.status = p.status;
  d.replaceChildren(h('h3', { testid: 'eval-detail-title' }, `${p.name} · ${p.status}`));
  if (p.failures && p.failures.length) {
    d.append(h('ul', { class: 'muted small', testid: 'eval-failures' }, ...p.failures.map((f) => h('li', {}, f))));
  }
  if (p.human && p.awaitingRatings) d.append(ratingView(ctx, p, () => refresh()));
  for (const res of (p.summary && p.summary.results) || []) {
    const label = `${res.source} · ${res.taskType} · ${res.dataset}`;
    d.append(h('h4', {}, label), metricTable(res.metrics || {}, res.judgeNoise), intervalChart([{ label: res.source, metrics: res.metrics || {} }]));
  }
  if (p.summary) {
    const body = h('tbody', { testid: 'eval-records' });
    const more = h('button', { class: 'btn', type: 'button', testid: 'eval-more', hidden: true }, ctx.t('eval.more'));
    d.append(tx(ctx, 'h4', 'eval.records'), h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ...['prompt', 'response', 'scores', 'drill'].map((c) => tx(ctx, 'th', `eval.col.${c}`)))), body)), more);
    try { await loadRecords(id, 0, body, more); } catch (e) { ctx.toast(errMessage(e), 'error'); }
  }
}

function openJob(id) {
  S.open = id;
  for (const tr of S.ui.body.querySelectorAll('tr')) tr.classList.toggle('eval-selected', tr.dataset.job === id);
  renderDetail(id);
}

async function runCompare(ev) {
  ev.preventDefault();
  const ctx = S.ctx;
  const a = S.ui.compare.a.value;
  const b = S.ui.compare.b.value;
  const out = S.ui.compareOut;
  try {
    const [pa, pb, cmp] = await Promise.all([progressOf(a), progressOf(b),
      ctx.api.request('GET', `/haniwa/v1/evaluation-jobs/${encodeURIComponent(a)}/compare/${encodeURIComponent(b)}`)]);
    const series = [pa, pb].map((p) => ({ label: p.name, metrics: ((p.summary && p.summary.results) || [{}])[0].metrics || {} }));
    const rows = cmp.comparisons.map((c) => h('tr', { testid: 'eval-cmp-row', dataset: { metric: c.metric, verdict: c.verdict } },
      h('td', {}, c.metric), h('td', {}, fmtScore(c.difference)),
      h('td', {}, `[${fmtScore(c.ci95Low)}, ${fmtScore(c.ci95High)}]`), h('td', {}, fmtInt(c.count)),
      h('td', { class: `eval-verdict-${c.verdict}`, testid: 'eval-verdict' }, ctx.t(`eval.verdict.${c.verdict}`))));
    out.replaceChildren(
      h('p', { class: 'muted small' }, ctx.t('eval.compareHelp', { a: pa.name, b: pb.name })),
      h('table', { class: 'table', testid: 'eval-compare-table' },
        h('thead', {}, h('tr', {}, ...['metric', 'difference', 'interval', 'count', 'verdict'].map((c) => tx(ctx, 'th', `eval.col.${c}`)))),
        h('tbody', {}, ...rows)),
      legend(series, h), intervalChart(series));
  } catch (e) {
    ctx.toast(errMessage(e), 'error');
  }
}

export default definePanel({
  stylesheets: [new URL('evaluation.css', import.meta.url)],
  mount(el, ctx) {
    S.ctx = ctx;
    const body = h('tbody');
    const table = h('table', { class: 'table', testid: 'eval-table' },
      h('thead', {}, h('tr', {}, ...['name', 'status', 'progress', 'tasks', 'created', 'open'].map((c) => tx(ctx, 'th', `eval.col.${c}`)))),
      body);
    const empty = tx(ctx, 'p', 'eval.empty', { class: 'eval-empty muted card', testid: 'eval-empty' });
    const error = h('p', { class: 'usage-error card', testid: 'eval-error', hidden: true });
    const compare = {
      a: h('select', { testid: 'eval-compare-a' }),
      b: h('select', { testid: 'eval-compare-b', onchange: (e) => { e.target.dataset.touched = '1'; } }),
    };
    const compareForm = h('form', { class: 'eval-compare-form card', testid: 'eval-compare-form', onsubmit: runCompare, hidden: true },
      h('label', { class: 'field' }, tx(ctx, 'span', 'eval.compareA'), compare.a),
      h('label', { class: 'field' }, tx(ctx, 'span', 'eval.compareB'), compare.b),
      h('button', { class: 'btn btn-primary', type: 'submit', testid: 'eval-compare' }, ctx.t('eval.compare')));
    const compareOut = h('div', { testid: 'eval-compare-out' });
    const detail = h('section', { class: 'col', testid: 'eval-detail' });
    S.ui = { body, table, empty, error, compare, compareForm, compareOut, detail };
    el.append(h('div', { class: 'panel-pad col eval-main' },
      tx(ctx, 'h2', 'eval.title', { class: 'eval-title' }),
      tx(ctx, 'p', 'eval.help', { class: 'muted small' }),
      h('div', { class: 'row' }, tx(ctx, 'h3', 'eval.jobs'), h('span', { class: 'spacer' }),
        h('button', { class: 'btn', type: 'button', testid: 'eval-refresh', onclick: () => refresh() }, ctx.t('eval.refresh'))),
      error, empty, h('div', { class: 'table-wrap' }, table),
      compareForm, compareOut, detail));
  },
  show() {
    return refresh();
  },
});
