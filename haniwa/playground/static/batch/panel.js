// haniwa playground — Batch panel (#/batch).
//
// Creates and follows batch inference jobs through the Bedrock API the SDKs use: POST
// /model-invocation-job, GET /model-invocation-jobs, POST /model-invocation-job/{id}/stop. While a job
// is active the list is polled once a second (live counts and a <progress> bar); once it has ended, its
// output objects are listed with S3's ListObjectsV2 at this server and offered as download links
// (GET /<bucket>/<key>). Text from the server is rendered with textContent.

import './strings.js';
import { errMessage, h, tx } from '../common/dom.js';
import { definePanel } from '../common/panel.js';
import { fmtDateTime, fmtInt } from '../common/format.js';

const ACTIVE = ['Submitted', 'Validating', 'Scheduled', 'InProgress', 'Stopping'];
const POLL_MS = 1000;
const ROLE = 'arn:aws:iam::000000000000:role/haniwa-playground';

const S = { ctx: null, ui: {}, timer: null, outputs: new Map(), seq: 0 };

function jobId(arn) { return String(arn).split('/').pop(); }

function splitUri(uri) {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri || '');
  return m ? { bucket: m[1], prefix: m[2] } : null;
}

async function listOutputs(job) {
  // ListObjectsV2 answers XML; the keys are all the panel needs
  const out = splitUri(job.outputDataConfig.s3OutputDataConfig.s3Uri);
  if (!out) return [];
  const base = out.prefix && !out.prefix.endsWith('/') ? `${out.prefix}/` : out.prefix;
  const prefix = `${base}${jobId(job.jobArn)}/`;
  const res = await fetch(`/${encodeURIComponent(out.bucket)}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  if (!res.ok) return [];
  const xml = new DOMParser().parseFromString(await res.text(), 'application/xml');
  return [...xml.getElementsByTagName('Key')].map((k) => ({ bucket: out.bucket, key: k.textContent }));
}

function outputCell(job) {
  const ctx = S.ctx;
  const cell = h('td', { class: 'batch-links', testid: 'batch-output' });
  const files = S.outputs.get(job.jobArn);
  if (!files || !files.length) {
    cell.append(ctx.t('batch.noOutput'));
    return cell;
  }
  for (const f of files) {
    const name = f.key.split('/').pop();
    const path = `/${f.bucket}/${f.key.split('/').map(encodeURIComponent).join('/')}`;
    cell.append(h('a', { href: path, download: name, testid: 'batch-download', title: ctx.t('batch.download', { file: name }) }, name));
  }
  return cell;
}

function row(job) {
  const ctx = S.ctx;
  const total = job.totalRecordCount || 0;
  const done = job.processedRecordCount || 0;
  const bar = h('progress', { class: 'batch-progress', max: String(Math.max(total, 1)), value: String(done), testid: 'batch-progress' });
  if (!total && ACTIVE.includes(job.status)) bar.removeAttribute('value'); // indeterminate until counted
  const stop = ACTIVE.includes(job.status) && job.status !== 'Stopping'
    ? h('button', { class: 'btn btn-small', type: 'button', testid: 'batch-stop', onclick: () => stopJob(job) }, ctx.t('batch.stop'))
    : null;
  return h('tr', { testid: 'batch-row', dataset: { job: jobId(job.jobArn), status: job.status } },
    h('td', {}, h('strong', { testid: 'batch-name' }, job.jobName), h('div', { class: 'muted small mono' }, jobId(job.jobArn))),
    h('td', {}, h('span', { class: `batch-status-${job.status}`, testid: 'batch-status' }, job.status), ' ', stop),
    h('td', {}, bar, ' ', h('span', { testid: 'batch-done' }, `${fmtInt(done)} / ${fmtInt(total)}`),
      h('span', { class: 'batch-message muted small', testid: 'batch-message' }, job.message || '')),
    h('td', { testid: 'batch-counts' }, `${fmtInt(job.successRecordCount || 0)} · ${fmtInt(job.errorRecordCount || 0)}`),
    h('td', { class: 'small' }, fmtDateTime(job.submitTime, ctx.lang())),
    outputCell(job));
}

async function refresh() {
  const ctx = S.ctx;
  const seq = ++S.seq;
  let jobs;
  try {
    jobs = (await ctx.api.request('GET', '/model-invocation-jobs?maxResults=100')).invocationJobSummaries || [];
  } catch (e) {
    S.ui.error.textContent = ctx.t('batch.loadFailed', { message: errMessage(e) });
    S.ui.error.hidden = false;
    return;
  }
  if (seq !== S.seq) return;
  S.ui.error.hidden = true;
  for (const job of jobs) {
    if (!ACTIVE.includes(job.status) && !S.outputs.has(job.jobArn)) {
      try { S.outputs.set(job.jobArn, await listOutputs(job)); } catch (_) { /* shown as no output */ }
    }
  }
  S.ui.body.replaceChildren(...jobs.map(row));
  S.ui.empty.hidden = jobs.length > 0;
  S.ui.table.hidden = jobs.length === 0;
  clearTimeout(S.timer);
  if (jobs.some((j) => ACTIVE.includes(j.status))) S.timer = setTimeout(refresh, POLL_MS);
}

async function stopJob(job) {
  try {
    await S.ctx.api.request('POST', `/model-invocation-job/${jobId(job.jobArn)}/stop`, {});
    S.ctx.toast(S.ctx.t('batch.stopped', { name: job.jobName }), 'ok');
  } catch (e) {
    S.ctx.toast(errMessage(e), 'error');
  }
  refresh();
}

async function create(ev) {
  ev.preventDefault();
  const ctx = S.ctx;
  const f = S.ui.form;
  const body = {
    jobName: f.name.value.trim(),
    roleArn: ROLE,
    modelId: f.model.value,
    modelInvocationType: f.type.value,
    inputDataConfig: { s3InputDataConfig: { s3Uri: f.input.value.trim() } },
    outputDataConfig: { s3OutputDataConfig: { s3Uri: f.output.value.trim() } },
  };
  S.ui.create.disabled = true;
  try {
    await ctx.api.request('POST', '/model-invocation-job', body);
    ctx.toast(ctx.t('batch.created', { name: body.jobName }), 'ok');
    f.name.value = '';
  } catch (e) {
    ctx.toast(errMessage(e), 'error');
  } finally {
    S.ui.create.disabled = false;
  }
  refresh();
}

function field(key, input) {
  return h('label', { class: 'field' }, tx(S.ctx, 'span', key), input);
}

async function fillModels() {
  let models = [];
  try { models = await S.ctx.api.listModels(); } catch (_) { /* the select stays empty */ }
  const chat = models.filter((m) => m.chat !== false);
  S.ui.form.model.replaceChildren(...chat.map((m) => h('option', { value: m.id }, m.id)));
}

export default definePanel({
  stylesheets: [new URL('batch.css', import.meta.url)],
  mount(el, ctx) {
    S.ctx = ctx;
    const form = {
      name: h('input', { required: true, pattern: '[a-zA-Z0-9][a-zA-Z0-9+.\\-]*', maxlength: '63', testid: 'batch-name-input', 'data-autofocus': true }),
      model: h('select', { testid: 'batch-model' }),
      type: h('select', { testid: 'batch-type' }, h('option', { value: 'InvokeModel' }, 'InvokeModel'), h('option', { value: 'Converse' }, 'Converse')),
      input: h('input', { required: true, placeholder: 's3://my-bucket/records/', testid: 'batch-input' }),
      output: h('input', { required: true, placeholder: 's3://my-bucket/results/', testid: 'batch-output-uri' }),
    };
    const createBtn = h('button', { class: 'btn btn-primary', type: 'submit', testid: 'batch-create' }, ctx.t('batch.create'));
    createBtn.dataset.i18n = 'batch.create';
    const body = h('tbody');
    const table = h('table', { class: 'table', testid: 'batch-table' },
      h('thead', {}, h('tr', {}, ...['name', 'status', 'progress', 'counts', 'submitted', 'output'].map((c) => tx(ctx, 'th', `batch.col.${c}`)))),
      body);
    const empty = tx(ctx, 'p', 'batch.empty', { class: 'batch-empty muted card', testid: 'batch-empty' });
    const error = h('p', { class: 'usage-error card', testid: 'batch-error', hidden: true });
    S.ui = { form, create: createBtn, body, table, empty, error };
    el.append(h('div', { class: 'panel-pad col batch-main' },
      tx(ctx, 'h2', 'batch.title', { class: 'batch-title' }),
      tx(ctx, 'p', 'batch.help', { class: 'muted small' }),
      h('form', { class: 'batch-form card', testid: 'batch-form', onsubmit: create },
        field('batch.name', form.name), field('batch.model', form.model), field('batch.type', form.type),
        field('batch.input', form.input), field('batch.output', form.output), createBtn),
      h('div', { class: 'row' }, tx(ctx, 'h3', 'batch.jobs'), h('span', { class: 'spacer' }),
        h('button', { class: 'btn', type: 'button', testid: 'batch-refresh', onclick: () => refresh() }, ctx.t('batch.refresh'))),
      error, empty, h('div', { class: 'table-wrap' }, table)));
    fillModels();
  },
  show() {
    return refresh();
  },
});
