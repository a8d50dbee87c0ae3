// haniwa playground — Customization panel (#/customization, #/customization/<jobId>).
//
// Creates and follows model customization jobs through the Bedrock API the SDKs use
// (POST/GET /model-customization-jobs, …/{id}/stop). What Bedrock's shapes have no member for comes from
// haniwa's REST routes: GET /haniwa/v1/customization/jobs/<id> (step/total, ETA, loss curve, before/after)
// and GET /haniwa/v1/customization/hyperparameters?baseModel= (the documented ranges the form shows).
// While a job trains, the list and the open job are polled once a second, so the loss curve grows live.
// "Deploy and try" creates a custom model deployment (CreateCustomModelDeployment) or a provisioned
// throughput of the job's custom model and opens Chat with that ARN selected. Server text → textContent.

import './strings.js';
import { errMessage, h, tx } from '../common/dom.js';
import { definePanel } from '../common/panel.js';
import { fmtDateTime, fmtInt, num } from '../common/format.js';
import { lossChart } from './chart.js';

const ACTIVE = ['InProgress', 'Stopping'];
const POLL_MS = 1000;
const ROLE = 'arn:aws:iam::000000000000:role/haniwa-playground';
const HP = ['epochCount', 'batchSize', 'learningRate', 'learningRateWarmupSteps'];
const FLAGS = ['worse', 'simplified_chinese', 'not_japanese', 'format_broken'];
const CHAT_MODEL_KEY = 'haniwa.chat.model';   // the Chat panel's remembered model (chat/panel.js)

const S = { ctx: null, ui: {}, timer: null, details: new Map(), jobs: [], open: null, seq: 0, ranges: null };

function jobId(arn) { return String(arn).split('/').pop(); }

function fmtDuration(ctx, seconds) {
  const s = num(seconds);
  if (s === null) return '—';
  if (s < 60) return `${Math.max(1, Math.round(s))}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}

function fmtLoss(v) {
  const n = num(v);
  return n === null ? '—' : n.toFixed(3);
}

async function details(id) {
  const d = await S.ctx.api.request('GET', `/haniwa/v1/customization/jobs/${encodeURIComponent(id)}`);
  S.details.set(id, d);
  return d;
}

// ---- job list -----------------------------------------------------------------------------------

function row(job) {
  const ctx = S.ctx;
  const id = jobId(job.jobArn);
  const d = S.details.get(id) || {};
  const total = num(d.totalSteps) || 0;
  const done = num(d.step) || 0;
  const bar = h('progress', { class: 'cust-progress', max: String(Math.max(total, 1)), value: String(done), testid: 'cust-progress' });
  if (!total && ACTIVE.includes(job.status)) bar.removeAttribute('value');
  const stop = job.status === 'InProgress'
    ? h('button', { class: 'btn btn-small', type: 'button', testid: 'cust-stop', onclick: (e) => { e.stopPropagation(); stopJob(job); } }, ctx.t('cust.stop'))
    : null;
  const eta = ACTIVE.includes(job.status) && num(d.eta) !== null ? ctx.t('cust.eta', { time: fmtDuration(ctx, d.eta) }) : '—';
  return h('tr', {
    testid: 'cust-row', class: S.open === id ? 'cust-row-open' : '', tabindex: '0',
    dataset: { job: id, status: job.status },
    onclick: () => ctx.navigate(`#/customization/${id}`),
    onkeydown: (e) => { if (e.key === 'Enter') ctx.navigate(`#/customization/${id}`); },
  },
  h('td', {}, h('strong', { testid: 'cust-name' }, job.jobName), h('div', { class: 'muted small mono' }, id)),
  h('td', {}, h('span', { class: `cust-status-${job.status}`, testid: 'cust-status' }, job.status), ' ', stop,
    h('span', { class: 'cust-message muted small', testid: 'cust-message' }, d.message || '')),
  h('td', {}, bar, ' ', h('span', { testid: 'cust-steps' }, `${fmtInt(done)} / ${fmtInt(total)}`)),
  h('td', { testid: 'cust-eta' }, eta),
  h('td', { class: 'small' }, fmtDateTime(job.creationTime, ctx.lang())));
}

async function refresh() {
  const ctx = S.ctx;
  const seq = ++S.seq;
  let jobs;
  try {
    jobs = (await ctx.api.request('GET', '/model-customization-jobs?maxResults=100&sortBy=CreationTime&sortOrder=Descending')).modelCustomizationJobSummaries || [];
    await Promise.all(jobs.slice(0, 50)
      .filter((j) => ACTIVE.includes(j.status) || !S.details.has(jobId(j.jobArn)) || jobId(j.jobArn) === S.open)
      .map((j) => details(jobId(j.jobArn)).catch(() => null)));
  } catch (e) {
    S.ui.error.textContent = ctx.t('cust.loadFailed', { message: errMessage(e) });
    S.ui.error.hidden = false;
    return;
  }
  if (seq !== S.seq) return;
  S.jobs = jobs;
  S.ui.error.hidden = true;
  S.ui.body.replaceChildren(...jobs.map(row));
  S.ui.empty.hidden = jobs.length > 0;
  S.ui.table.hidden = jobs.length === 0;
  renderDetail();
  clearTimeout(S.timer);
  if (jobs.some((j) => ACTIVE.includes(j.status))) S.timer = setTimeout(refresh, POLL_MS);
}

async function stopJob(job) {
  try {
    await S.ctx.api.request('POST', `/model-customization-jobs/${jobId(job.jobArn)}/stop`, {});
    S.ctx.toast(S.ctx.t('cust.stopped', { name: job.jobName }), 'ok');
  } catch (e) {
    S.ctx.toast(errMessage(e), 'error');
  }
  refresh();
}

// ---- the open job: loss curve, before/after, deploy ---------------------------------------------

function flagCell(flags) {
  const ctx = S.ctx;
  const cell = h('td', { testid: 'cust-flags' });
  if (!flags.length) cell.append(h('span', { class: 'cust-flag cust-flag-ok' }, ctx.t('cust.flag.none')));
  for (const f of flags) {
    const known = FLAGS.includes(f);
    cell.append(h('span', { class: 'cust-flag cust-flag-bad', dataset: { flag: f } }, known ? ctx.t(`cust.flag.${f}`) : f), ' ');
  }
  return cell;
}

function comparisonTable(cmp) {
  const ctx = S.ctx;
  const rows = cmp.rows || [];
  const body = h('tbody', {}, ...rows.map((r) => h('tr', {
    testid: 'cust-compare-row', class: r.flags && r.flags.length ? 'cust-regression' : '',
    dataset: { flags: (r.flags || []).join(' ') },
  },
  h('td', { class: 'small' }, ctx.t(`cust.set.${r.set}`) || r.set),
  h('td', { class: 'cust-text' }, r.prompt),
  h('td', { class: 'cust-text muted' }, r.reference === null || r.reference === undefined ? '—' : r.reference),
  h('td', { class: 'cust-text', testid: 'cust-before' }, r.base),
  h('td', { class: 'cust-text', testid: 'cust-after' }, r.custom),
  flagCell(r.flags || []))));
  return h('div', {},
    h('p', { class: 'small', testid: 'cust-regressions' }, ctx.t('cust.regressions', { n: fmtInt(cmp.regressions || 0), total: fmtInt(rows.length) })),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table cust-compare', testid: 'cust-compare' },
      h('thead', {}, h('tr', {}, ...['set', 'prompt', 'reference', 'before', 'after', 'flags'].map((c) => tx(ctx, 'th', `cust.col.${c}`)))),
      body)));
}

function deployBox(job) {
  const ctx = S.ctx;
  if (!job || job.status !== 'Completed') {
    return tx(ctx, 'p', 'cust.deployWaiting', { class: 'muted small', testid: 'cust-deploy-waiting' });
  }
  const kind = h('select', { testid: 'cust-deploy-kind' },
    h('option', { value: 'deployment' }, ctx.t('cust.kind.deployment')),
    h('option', { value: 'provisioned' }, ctx.t('cust.kind.provisioned')));
  const btn = h('button', { class: 'btn btn-primary', type: 'button', testid: 'cust-deploy' }, ctx.t('cust.deploy'));
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try {
      await deploy(job, kind.value);
    } catch (e) {
      ctx.toast(ctx.t('cust.deployFailed', { message: errMessage(e) }), 'error');
    } finally {
      btn.disabled = false;
    }
  });
  return h('div', { class: 'row cust-deploy' }, h('label', { class: 'field' }, tx(ctx, 'span', 'cust.deployKind'), kind), btn);
}

async function deploy(job, kind) {
  const ctx = S.ctx;
  const got = await ctx.api.request('GET', `/model-customization-jobs/${jobId(job.jobArn)}`);
  const modelArn = got.outputModelArn;
  const name = `${got.outputModelName || job.jobName}-${Date.now().toString(36)}`.slice(0, 63);
  let arn;
  if (kind === 'provisioned') {
    arn = (await ctx.api.request('POST', '/provisioned-model-throughput', { provisionedModelName: name, modelId: modelArn, modelUnits: 1 })).provisionedModelArn;
  } else {
    arn = (await ctx.api.request('POST', '/model-customization/custom-model-deployments', { modelDeploymentName: name, modelArn })).customModelDeploymentArn;
  }
  // the new model is listed now (ListFoundationModels names a deployment by its id); Chat reads this list
  const models = await ctx.api.listModels({ refresh: true });
  const listed = models.find((m) => m.id === arn || m.id === jobId(arn));
  const id = listed ? listed.id : arn;
  try { localStorage.setItem(CHAT_MODEL_KEY, id); } catch (_) { /* Chat falls back to its first model */ }
  window.dispatchEvent(new CustomEvent('haniwa:select-model', { detail: { id } }));
  ctx.toast(ctx.t('cust.deployed', { name }), 'ok');
  ctx.navigate('#/chat');
}

function renderDetail() {
  const ctx = S.ctx;
  const box = S.ui.detail;
  const job = S.jobs.find((j) => jobId(j.jobArn) === S.open);
  const d = S.open && S.details.get(S.open);
  if (!job || !d) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.hidden = false;
  box.dataset.job = S.open;
  box.dataset.status = job.status;
  const figures = d.figures || {};
  const curve = d.lossCurve || [];
  const last = curve.length ? curve[curve.length - 1] : null;
  const valid = num(figures.validationLoss) !== null
    ? { step: last ? last[0] : num(d.step) || 0, loss: figures.validationLoss } : null;
  box.replaceChildren(
    h('h3', { class: 'cust-detail-title' }, ctx.t('cust.detail', { name: job.jobName })),
    h('p', { class: 'muted small' }, d.baseModel ? `${job.baseModelArn || ''} → ${d.baseModel}` : (job.baseModelArn || '')),
    tx(ctx, 'h4', 'cust.loss'),
    h('p', { class: 'small', testid: 'cust-loss-figures' }, ctx.t('cust.lossFigures', {
      step: fmtInt(d.step), total: fmtInt(d.totalSteps), loss: fmtLoss(last ? last[2] : null), valid: fmtLoss(valid && valid.loss),
    })),
    h('div', { class: 'cust-chart-wrap' }, lossChart(ctx, curve, valid)),
    tx(ctx, 'h4', 'cust.compare'),
    tx(ctx, 'p', 'cust.compareHelp', { class: 'muted small' }),
    d.comparison ? comparisonTable(d.comparison) : tx(ctx, 'p', 'cust.compareWaiting', { class: 'muted small', testid: 'cust-compare-waiting' }),
    deployBox(job));
}

// ---- create form --------------------------------------------------------------------------------

async function showRanges() {
  const ctx = S.ctx;
  const base = S.ui.form.base.value;
  try {
    S.ranges = await ctx.api.request('GET', `/haniwa/v1/customization/hyperparameters?baseModel=${encodeURIComponent(base)}`);
  } catch (_) {
    S.ranges = null;
  }
  const r = S.ranges;
  S.ui.family.textContent = r ? ctx.t('cust.hpFamily', { family: r.family }) : '';
  for (const name of HP) {
    const spec = r && r.hyperParameters[name];
    const input = S.ui.form.hp[name];
    S.ui.hints[name].textContent = spec ? ctx.t('cust.range', { min: spec.min, max: spec.max, default: spec.default }) : '';
    if (spec) {
      input.min = String(spec.min);
      input.max = String(spec.max);
      input.step = spec.integer ? '1' : 'any';
      input.placeholder = String(spec.default);
    }
  }
}

async function create(ev) {
  ev.preventDefault();
  const ctx = S.ctx;
  const f = S.ui.form;
  const hyperParameters = {};
  for (const name of HP) if (f.hp[name].value.trim()) hyperParameters[name] = f.hp[name].value.trim();
  const body = {
    jobName: f.name.value.trim(),
    customModelName: f.modelName.value.trim() || `${f.name.value.trim()}-model`,
    roleArn: ROLE,
    baseModelIdentifier: f.base.value,
    customizationType: f.type.value,
    trainingDataConfig: { s3Uri: f.training.value.trim() },
    outputDataConfig: { s3Uri: f.output.value.trim() },
    hyperParameters,
  };
  if (f.validation.value.trim()) body.validationDataConfig = { validators: [{ s3Uri: f.validation.value.trim() }] };
  S.ui.create.disabled = true;
  S.ui.formError.hidden = true;
  try {
    const out = await ctx.api.request('POST', '/model-customization-jobs', body);
    ctx.toast(ctx.t('cust.created', { name: body.jobName }), 'ok');
    f.name.value = '';
    f.modelName.value = '';
    ctx.navigate(`#/customization/${jobId(out.jobArn)}`);
  } catch (e) {
    S.ui.formError.textContent = ctx.t('cust.createFailed', { message: errMessage(e) });
    S.ui.formError.hidden = false;
  } finally {
    S.ui.create.disabled = false;
  }
  refresh();
}

function field(key, input, hint) {
  return h('label', { class: 'field' }, tx(S.ctx, 'span', key), input, hint || null);
}

async function fillModels() {
  let models = [];
  try { models = await S.ctx.api.listModels(); } catch (_) { /* the select stays empty */ }
  // a base model is a foundation model id (not a custom model, deployment or provisioned ARN)
  const bases = models.filter((m) => m.chat !== false && !m.id.startsWith('arn:'));
  S.ui.form.base.replaceChildren(...bases.map((m) => h('option', { value: m.id }, m.id)));
  await showRanges();
}

export default definePanel({
  stylesheets: [new URL('customization.css', import.meta.url)],
  mount(el, ctx) {
    S.ctx = ctx;
    const hp = {};
    const hints = {};
    for (const name of HP) {
      hp[name] = h('input', { type: 'number', step: 'any', testid: `cust-hp-${name}`, inputmode: 'decimal' });
      hints[name] = h('span', { class: 'muted small cust-range', testid: `cust-range-${name}` });
    }
    const form = {
      name: h('input', { required: true, pattern: '[a-zA-Z0-9][a-zA-Z0-9+.\\-]*', maxlength: '63', testid: 'cust-name-input', 'data-autofocus': true }),
      modelName: h('input', { maxlength: '63', testid: 'cust-model-name' }),
      base: h('select', { testid: 'cust-base', onchange: () => showRanges() }),
      type: h('select', { testid: 'cust-type' }, h('option', { value: 'FINE_TUNING' }, 'FINE_TUNING'), h('option', { value: 'CONTINUED_PRE_TRAINING' }, 'CONTINUED_PRE_TRAINING')),
      training: h('input', { required: true, placeholder: 's3://my-bucket/train.jsonl', testid: 'cust-training' }),
      validation: h('input', { placeholder: 's3://my-bucket/validation.jsonl', testid: 'cust-validation' }),
      output: h('input', { required: true, placeholder: 's3://my-bucket/output/', testid: 'cust-output' }),
      hp,
    };
    const createBtn = h('button', { class: 'btn btn-primary', type: 'submit', testid: 'cust-create' }, ctx.t('cust.create'));
    createBtn.dataset.i18n = 'cust.create';
    const body = h('tbody');
    const table = h('table', { class: 'table', testid: 'cust-table' },
      h('thead', {}, h('tr', {}, ...['name', 'status', 'progress', 'eta', 'created'].map((c) => tx(ctx, 'th', `cust.col.${c}`)))),
      body);
    const empty = tx(ctx, 'p', 'cust.empty', { class: 'cust-empty muted card', testid: 'cust-empty' });
    const error = h('p', { class: 'usage-error card', testid: 'cust-error', hidden: true });
    const formError = h('p', { class: 'cust-form-error', role: 'alert', testid: 'cust-form-error', hidden: true });
    const family = h('p', { class: 'muted small cust-family', testid: 'cust-family' });
    const detail = h('section', { class: 'card cust-detail', testid: 'cust-detail', hidden: true });
    S.ui = { form, create: createBtn, body, table, empty, error, formError, family, hints, detail };
    el.append(h('div', { class: 'panel-pad col cust-main' },
      tx(ctx, 'h2', 'cust.title', { class: 'cust-title' }),
      tx(ctx, 'p', 'cust.help', { class: 'muted small' }),
      h('form', { class: 'cust-form card', testid: 'cust-form', onsubmit: create },
        h('div', { class: 'cust-grid' },
          field('cust.name', form.name), field('cust.modelName', form.modelName), field('cust.base', form.base),
          field('cust.type', form.type), field('cust.training', form.training), field('cust.validation', form.validation),
          field('cust.output', form.output)),
        tx(ctx, 'h4', 'cust.hp'), family,
        h('div', { class: 'cust-grid' }, ...HP.map((name) => h('label', { class: 'field' }, h('span', { class: 'mono' }, name), hp[name], hints[name]))),
        formError, createBtn),
      h('div', { class: 'row' }, tx(ctx, 'h3', 'cust.jobs'), h('span', { class: 'spacer' }),
        tx(ctx, 'button', 'cust.refresh', { class: 'btn', type: 'button', testid: 'cust-refresh', onclick: () => refresh() })),
      error, empty, h('div', { class: 'table-wrap' }, table), detail));
    ctx.onLangChange(() => { renderDetail(); showRanges(); });
    fillModels();
  },
  show(el, ctx, args) {
    S.open = (args && args[0]) || null;
    return refresh();
  },
});
