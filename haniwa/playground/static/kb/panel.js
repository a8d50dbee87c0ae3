// haniwa playground — Knowledge bases panel (#/kb: list + create form, #/kb/<knowledgeBaseId>: one KB).
//
// Everything goes through the Bedrock REST API the SDKs use: bedrock (ListFoundationModels),
// bedrock-agent (knowledge bases, data sources, ingestion jobs, IngestKnowledgeBaseDocuments) and
// bedrock-agent-runtime (Retrieve, RetrieveAndGenerate). Ingestion jobs carry haniwa's `progress`
// extension ({documentsListed, documentsScanned}) so the sync bar knows its 100%.
// User, model and document text is only ever rendered with textContent.
//
// Modules: panel.js (list, create form, uploads, detail, sync), query.js (Retrieve, RetrieveAndGenerate),
// util.js (KB helpers; the generic DOM ones are in common/dom.js), strings.js (en/ja strings).

import './strings.js';
import { buildQuery, rerenderQuery } from './query.js';
import { errMessage, h } from '../common/dom.js';
import { definePanel } from '../common/panel.js';
import { fmtBytes, fmtDateTime } from '../common/format.js';
import {
  arnOf, ctx, field, fillSelect, placeholder, setContext, t, tx,
} from './util.js';

// Bedrock requires these; haniwa keeps the vectors itself whatever the storage type says (RDS → pgvector
// when HANIWA_PG_URL is set), so the playground names a placeholder collection.
const ROLE_ARN = 'arn:aws:iam::000000000000:role/haniwa-playground';
const STORAGE = {
  type: 'OPENSEARCH_SERVERLESS',
  opensearchServerlessConfiguration: {
    collectionArn: 'arn:aws:aoss:us-east-1:000000000000:collection/haniwa-playground',
    vectorIndexName: 'haniwa',
    fieldMapping: { vectorField: 'vector', textField: 'text', metadataField: 'metadata' },
  },
};
const NAME_RE = /^([0-9a-zA-Z][_-]?){1,100}$/;   // Bedrock's Name pattern (botocore service-2.json)
const MAX_FILE_BYTES = 5 * 1024 * 1024;           // ByteContentBlob max
const DOCS_PER_CALL = 10;                         // KnowledgeBaseDocuments max
const BATCH_BYTES = 6 * 1024 * 1024;
const POLL_MS = 300;
const MIME = {
  txt: 'text/plain', text: 'text/plain', md: 'text/markdown', markdown: 'text/markdown',
  html: 'text/html', htm: 'text/html', csv: 'text/csv', json: 'application/json', pdf: 'application/pdf',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};
const ACCEPT = Object.keys(MIME).map((e) => `.${e}`).join(',');
const CHUNKINGS = ['FIXED_SIZE', 'HIERARCHICAL', 'SEMANTIC', 'NONE'];
const CHUNK_PARAMS = {
  FIXED_SIZE: [['maxTokens', 'kb-max-tokens', 'kb.maxTokens', 300], ['overlapPercentage', 'kb-overlap', 'kb.overlap', 20]],
  HIERARCHICAL: [['parent', 'kb-parent-tokens', 'kb.parentTokens', 1500], ['child', 'kb-child-tokens', 'kb.childTokens', 300],
    ['overlapTokens', 'kb-overlap-tokens', 'kb.overlapTokens', 60]],
  SEMANTIC: [['maxTokens', 'kb-semantic-max-tokens', 'kb.maxTokens', 300], ['bufferSize', 'kb-buffer-size', 'kb.bufferSize', 0],
    ['breakpointPercentileThreshold', 'kb-breakpoint', 'kb.breakpoint', 95]],
  NONE: [],
};
const STATS = [
  ['scanned', 'numberOfDocumentsScanned'],
  ['new', 'numberOfNewDocumentsIndexed'],
  ['modified', 'numberOfModifiedDocumentsIndexed'],
  ['deleted', 'numberOfDocumentsDeleted'],
  ['failed', 'numberOfDocumentsFailed'],
];
const JOB_DONE = new Set(['COMPLETE', 'FAILED', 'STOPPED']);
const DOC_BUSY = new Set(['waiting', 'reading', 'uploading', 'STARTING', 'IN_PROGRESS', 'PENDING', 'DELETING', 'DELETE_IN_PROGRESS']);

const enc = encodeURIComponent;
const P = {
  kbs: '/knowledgebases/',
  kb: (kb) => `/knowledgebases/${enc(kb)}`,
  dss: (kb) => `/knowledgebases/${enc(kb)}/datasources/`,
  ds: (kb, ds) => `/knowledgebases/${enc(kb)}/datasources/${enc(ds)}`,
  jobs: (kb, ds) => `${P.ds(kb, ds)}/ingestionjobs/`,
  job: (kb, ds, job) => `${P.ds(kb, ds)}/ingestionjobs/${enc(job)}`,
  docs: (kb, ds) => `${P.ds(kb, ds)}/documents`,
  models: '/foundation-models',
};

// ---------------------------------------------------------------------------------------------------
// small helpers (numbers and times: common/format.js)

function shortModel(arn) {
  return String(arn || '').replace(/^arn:aws:bedrock:[^:]*:[^:]*:(foundation-model|inference-profile)\//, '');
}

function badgeClass(status) {
  if (['COMPLETE', 'INDEXED', 'ACTIVE', 'AVAILABLE'].includes(status)) return 'badge ok';
  if (['FAILED', 'DELETE_UNSUCCESSFUL', 'NOT_FOUND'].includes(status)) return 'badge error';
  if (['STOPPED', 'STOPPING', 'PARTIALLY_INDEXED', 'IGNORED'].includes(status)) return 'badge warn';
  return 'badge accent';
}

function extOf(name) {
  const m = /\.([^.]+)$/.exec(name || '');
  return m ? m[1].toLowerCase() : '';
}

function mimeOf(file) {
  return MIME[extOf(file.name)] || file.type || 'text/plain';
}

function fileProblem(file) {
  if (!MIME[extOf(file.name)]) return 'kb.unsupported';
  if (file.size === 0) return 'kb.emptyFile';
  if (file.size > MAX_FILE_BYTES) return 'kb.tooLarge';
  return null;
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result || '');
      resolve(url.slice(url.indexOf(',') + 1));
    };
    reader.onerror = () => reject(reader.error || new Error('read failed'));
    reader.readAsDataURL(file);
  });
}

function chunkingText(ds) {
  const c = ds && ds.vectorIngestionConfiguration && ds.vectorIngestionConfiguration.chunkingConfiguration;
  if (!c) return t('kb.chunkDefault');
  const name = t(`kb.chunk.${c.chunkingStrategy}`);
  if (c.chunkingStrategy === 'FIXED_SIZE' && c.fixedSizeChunkingConfiguration) {
    const f = c.fixedSizeChunkingConfiguration;
    return `${name} · ${f.maxTokens} / ${f.overlapPercentage}%`;
  }
  if (c.chunkingStrategy === 'HIERARCHICAL' && c.hierarchicalChunkingConfiguration) {
    const f = c.hierarchicalChunkingConfiguration;
    return `${name} · ${f.levelConfigurations.map((l) => l.maxTokens).join(' → ')} / ${f.overlapTokens}`;
  }
  if (c.chunkingStrategy === 'SEMANTIC' && c.semanticChunkingConfiguration) {
    const f = c.semanticChunkingConfiguration;
    return `${name} · ${f.maxTokens} / ${f.bufferSize} / ${f.breakpointPercentileThreshold}`;
  }
  return name;
}

function dsType(ds) {
  return (ds && ds.dataSourceConfiguration && ds.dataSourceConfiguration.type) || '';
}

// the bucket/prefix pairs an S3 data source reads ('' prefix: the whole bucket)
function s3Paths(ds) {
  const s3 = (ds.dataSourceConfiguration || {}).s3Configuration || {};
  const bucket = String(s3.bucketArn || '').replace(/^arn:aws:s3:::/, '');
  const prefixes = s3.inclusionPrefixes && s3.inclusionPrefixes.length ? s3.inclusionPrefixes : [''];
  return prefixes.map((p) => `${bucket}/${p}`);
}

function dsLocation(ds) {
  const type = dsType(ds);
  if (type === 'S3') return s3Paths(ds).map((p) => `s3://${p}`).join(', ');
  if (type === 'CUSTOM') return t('kb.uploaded');
  return type;
}

// ---------------------------------------------------------------------------------------------------
// state

const S = {
  ctx: null,
  el: null,
  ui: {},
  embeddingModels: [],
  textModels: [],
  kbs: [],                 // ListKnowledgeBases summaries
  details: new Map(),      // kbId → {kb, dataSources: [full data source]}
  current: null,           // the open knowledge base id (null: the create form)
  viewSeq: 0,              // bumped whenever the main view changes; stale async work checks it
  polls: new Map(),        // dsId → timeout id of its ingestion-job poll
  jobs: new Map(),         // dsId → last ingestion job seen
  uploads: new Map(),      // dsId → [{id, name, size, file, status, reason}] (local upload progress)
  docs: new Map(),         // dsId → [document details] from ListKnowledgeBaseDocuments
  docPolls: new Map(),     // dsId → timeout id
  files: [],               // files picked in the create form
};

function api() {
  return ctx().api;
}

// ---------------------------------------------------------------------------------------------------
// panel entry points

export default definePanel({
  stylesheets: [new URL('kb.css', import.meta.url)],
  mount,
  show,
});

async function mount(el, ctx) {
  S.ctx = ctx;
  S.el = el;
  setContext(ctx);
  buildShell(el);
  ctx.onLangChange(() => {
    renderList();
    renderFileList();
    updatePreview();
    rerenderDynamic();
  });
  await Promise.all([loadModels(), refreshList()]);
}

async function show(el, ctx, args) {
  const id = (args && args[0]) || null;
  if (!id) {
    showCreate();
    return;
  }
  if (id === S.current && S.ui.main.querySelector('[data-testid="kb-detail"]')) {
    refreshDetail(id);   // back from another tab: keep what was typed, pick up the jobs again
    return;
  }
  await openKb(id);
}

function buildShell(el) {
  const ui = S.ui;
  el.classList.add('kb-panel');
  ui.newBtn = tx('button', 'kb.new', { type: 'button', class: 'btn btn-primary kb-new', testid: 'kb-new' });
  ui.newBtn.addEventListener('click', () => {
    S.ctx.navigate('#/kb');
    showCreate();
    S.ui.name.focus();
  });
  ui.list = h('ul', { class: 'list kb-list', testid: 'kb-list' });
  ui.listEmpty = tx('p', 'kb.none', { class: 'empty small', testid: 'kb-list-empty', hidden: true });
  ui.main = h('div', { class: 'panel-pad kb-main', testid: 'kb-main' });
  ui.form = buildForm();
  el.replaceChildren(h('div', { class: 'sidebar-layout kb-layout' },
    h('aside', { class: 'sidebar kb-sidebar' },
      ui.newBtn,
      tx('h2', 'kb.list', { class: 'section-title' }),
      ui.list, ui.listEmpty),
    h('div', { class: 'main' }, ui.main)));
}

function stopPolls() {
  for (const id of S.polls.values()) clearTimeout(id);
  S.polls.clear();
  for (const id of S.docPolls.values()) clearTimeout(id);
  S.docPolls.clear();
}

function showCreate() {
  if (S.current === null && S.ui.form.parentNode === S.ui.main) return;   // already showing it
  S.viewSeq += 1;
  stopPolls();
  S.current = null;
  markActive();
  S.ui.main.replaceChildren(S.ui.form);
  fillEmbeddingSelect();
}

// ---------------------------------------------------------------------------------------------------
// models

async function loadModels() {
  try {
    const out = await api().request('GET', P.models);
    const all = (out && out.modelSummaries) || [];
    // rerankers also answer EMBEDDING, but cannot build an index
    S.embeddingModels = all.filter((m) => (m.outputModalities || []).includes('EMBEDDING') && !/rerank/i.test(m.modelId));
    S.textModels = all.filter((m) => (m.outputModalities || []).includes('TEXT'));
  } catch (e) {
    S.ctx.toast(errMessage(e), 'error');
  }
  fillEmbeddingSelect();
}

function fillEmbeddingSelect() {
  const sel = S.ui.embedding;
  if (!sel) return;
  const pref = S.embeddingModels.find((m) => /titan-embed-text-v2/.test(m.modelId)) || S.embeddingModels[0];
  fillSelect(sel, S.embeddingModels, 'kb.noEmbedding', pref && pref.modelId);
}

// ---------------------------------------------------------------------------------------------------
// list

async function listAll(path, key) {
  const items = [];
  let token = null;
  for (let i = 0; i < 50; i++) {
    const body = { maxResults: 100 };
    if (token) body.nextToken = token;
    const out = await api().request('POST', path, body);
    items.push(...((out && out[key]) || []));
    token = out && out.nextToken;
    if (!token) break;
  }
  return items;
}

async function loadDetail(kbId) {
  const [kbOut, summaries] = await Promise.all([
    api().request('GET', P.kb(kbId)),
    listAll(P.dss(kbId), 'dataSourceSummaries'),
  ]);
  const dataSources = await Promise.all(summaries.map((s) =>
    api().request('GET', P.ds(kbId, s.dataSourceId)).then((o) => o.dataSource)));
  const detail = { kb: kbOut.knowledgeBase, dataSources };
  S.details.set(kbId, detail);
  return detail;
}

async function refreshList() {
  try {
    S.kbs = await listAll(P.kbs, 'knowledgeBaseSummaries');
  } catch (e) {
    S.ctx.toast(errMessage(e), 'error');
    return;
  }
  renderList();
  // the summaries carry no embedding model or data sources: fill them in from Get/ListDataSources
  const missing = S.kbs.filter((k) => !S.details.has(k.knowledgeBaseId));
  await Promise.all(missing.map((k) => loadDetail(k.knowledgeBaseId).catch(() => null)));
  if (missing.length) renderList();
}

function renderList() {
  const { ui } = S;
  if (!ui.list) return;
  ui.list.replaceChildren();
  ui.listEmpty.hidden = S.kbs.length > 0;
  for (const k of S.kbs) {
    const d = S.details.get(k.knowledgeBaseId);
    const model = d ? shortModel(d.kb.knowledgeBaseConfiguration?.vectorKnowledgeBaseConfiguration?.embeddingModelArn) : '';
    const sources = d ? d.dataSources.map((ds) => `${ds.name} (${dsType(ds)})`).join(', ') : '';
    const a = h('a', {
      class: 'list-item kb-item', testid: 'kb-item', href: `#/kb/${enc(k.knowledgeBaseId)}`,
      'data-kb-id': k.knowledgeBaseId,
    },
    h('span', { class: 'body' },
      h('span', { class: 'title', testid: 'kb-item-name', text: k.name }),
      h('span', { class: 'meta mono', testid: 'kb-item-id', text: k.knowledgeBaseId }),
      model ? h('span', { class: 'meta', testid: 'kb-item-model', text: model, title: model }) : null,
      d ? h('span', { class: 'meta', testid: 'kb-item-sources', text: sources || t('kb.sources', { n: 0 }), title: sources }) : null),
    h('span', { class: badgeClass(k.status), testid: 'kb-item-status', text: k.status }));
    ui.list.append(h('li', {}, a));
  }
  markActive();
}

function markActive() {
  for (const a of S.ui.list.querySelectorAll('.kb-item')) {
    const on = a.dataset.kbId === S.current;
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------------------------------------------
// create form

function numberInput(testid, value) {
  return h('input', { type: 'number', id: testid, testid, value: String(value), min: '0', step: '1', inputmode: 'numeric' });
}

function buildForm() {
  const ui = S.ui;
  ui.name = h('input', { type: 'text', id: 'kb-name', testid: 'kb-name', autocomplete: 'off', spellcheck: 'false',
    maxlength: '200', 'data-autofocus': true });
  placeholder(ui.name, 'kb.name');
  ui.description = h('input', { type: 'text', testid: 'kb-description', autocomplete: 'off', maxlength: '200' });
  ui.embedding = h('select', { testid: 'kb-embedding' });

  ui.chunking = h('select', { testid: 'kb-chunking' });
  for (const c of CHUNKINGS) {
    const opt = h('option', { value: c, text: t(`kb.chunk.${c}`) });
    opt.dataset.i18n = `kb.chunk.${c}`;
    ui.chunking.append(opt);
  }
  ui.chunkHint = h('span', { class: 'hint', testid: 'kb-chunking-hint' });
  ui.chunkParams = {};
  ui.chunkPanes = {};
  for (const c of CHUNKINGS) {
    ui.chunkParams[c] = {};
    const fields = CHUNK_PARAMS[c].map(([key, testid, label, def]) => {
      const input = numberInput(testid, def);
      ui.chunkParams[c][key] = input;
      return field(label, input);
    });
    ui.chunkPanes[c] = h('div', { class: 'kb-params', hidden: true }, fields);
  }
  ui.chunking.addEventListener('change', updateChunking);

  // source: a folder (S3 data source) or uploaded files (CUSTOM data source)
  ui.srcFolder = h('input', { type: 'radio', name: 'kb-source', value: 'folder', testid: 'kb-source-folder', checked: true });
  ui.srcUpload = h('input', { type: 'radio', name: 'kb-source', value: 'upload', testid: 'kb-source-upload' });
  for (const r of [ui.srcFolder, ui.srcUpload]) r.addEventListener('change', updateSource);
  ui.bucket = h('input', { type: 'text', testid: 'kb-bucket', autocomplete: 'off', spellcheck: 'false', placeholder: 'factory-docs' });
  ui.prefix = h('input', { type: 'text', testid: 'kb-prefix', autocomplete: 'off', spellcheck: 'false', placeholder: 'manuals/' });
  ui.bucket.addEventListener('input', updatePreview);
  ui.prefix.addEventListener('input', updatePreview);
  ui.bucket.addEventListener('change', splitS3Uri);
  ui.preview = h('p', { class: 'mono small kb-preview', testid: 'kb-folder-preview' });
  ui.folderPane = h('div', { class: 'col kb-source-pane', testid: 'kb-folder-pane' },
    tx('p', 'kb.folderHelp', { class: 'muted small kb-help', testid: 'kb-folder-help' }),
    h('div', { class: 'grid-cols-2' }, field('kb.bucket', ui.bucket), field('kb.prefix', ui.prefix)),
    ui.preview);
  ui.files = h('input', { type: 'file', multiple: true, accept: ACCEPT, testid: 'kb-files' });
  ui.files.addEventListener('change', () => {
    const picked = Array.from(ui.files.files || []);
    const names = new Set(picked.map((f) => f.name));
    S.files = [...S.files.filter((f) => !names.has(f.name)), ...picked];
    ui.files.value = '';
    renderFileList();
  });
  ui.fileList = h('ul', { class: 'kb-files', testid: 'kb-file-list' });
  ui.uploadPane = h('div', { class: 'col kb-source-pane', testid: 'kb-upload-pane', hidden: true },
    tx('p', 'kb.uploadHelp', { class: 'muted small kb-help' }),
    field('kb.files', ui.files),
    ui.fileList);

  ui.formError = h('div', { class: 'kb-error', testid: 'kb-form-error', role: 'alert', hidden: true });
  ui.create = tx('button', 'kb.create', { type: 'submit', class: 'btn btn-primary', testid: 'kb-create' });

  const form = h('form', { class: 'card kb-form col', testid: 'kb-form', novalidate: true },
    tx('h1', 'kb.createTitle'),
    h('div', { class: 'grid-cols-2' },
      field('kb.name', ui.name, tx('span', 'kb.nameHint', { class: 'hint' })),
      field('kb.embedding', ui.embedding, tx('span', 'kb.embeddingHint', { class: 'hint' }))),
    field('kb.description', ui.description),
    h('fieldset', { class: 'kb-fieldset' },
      tx('legend', 'kb.chunking'),
      h('div', { class: 'col' }, ui.chunking, ui.chunkHint, ...CHUNKINGS.map((c) => ui.chunkPanes[c]))),
    h('fieldset', { class: 'kb-fieldset' },
      tx('legend', 'kb.source'),
      h('div', { class: 'kb-radios', role: 'radiogroup' },
        h('label', { class: 'check kb-radio' }, ui.srcFolder, tx('span', 'kb.sourceFolder')),
        h('label', { class: 'check kb-radio' }, ui.srcUpload, tx('span', 'kb.sourceUpload'))),
      ui.folderPane, ui.uploadPane),
    ui.formError,
    h('div', { class: 'row end' }, ui.create));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); createKb(); });
  updateChunking();
  updatePreview();
  return form;
}

function updateChunking() {
  const c = S.ui.chunking.value;
  for (const k of CHUNKINGS) S.ui.chunkPanes[k].hidden = k !== c;
  S.ui.chunkHint.dataset.i18n = `kb.chunkHint.${c}`;
  S.ui.chunkHint.textContent = t(`kb.chunkHint.${c}`);
}

function sourceKind() {
  return S.ui.srcUpload.checked ? 'upload' : 'folder';
}

function updateSource() {
  const upload = sourceKind() === 'upload';
  S.ui.folderPane.hidden = upload;
  S.ui.uploadPane.hidden = !upload;
}

// "s3://bucket/prefix" typed into the bucket field is split into its two fields
function splitS3Uri() {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(S.ui.bucket.value.trim());
  if (!m) return;
  S.ui.bucket.value = m[1];
  if (m[2]) S.ui.prefix.value = m[2];
  updatePreview();
}

function updatePreview() {
  const ui = S.ui;
  if (!ui.preview) return;
  const bucket = ui.bucket.value.trim() || '<bucket>';
  const prefix = ui.prefix.value.trim();
  ui.preview.textContent = t('kb.folderPreview', { uri: `s3://${bucket}/${prefix}`, path: `${bucket}/${prefix}` });
}

function renderFileList() {
  const ui = S.ui;
  if (!ui.fileList) return;
  ui.fileList.replaceChildren(...S.files.map((f) => {
    const problem = fileProblem(f);
    const remove = h('button', { type: 'button', class: 'btn btn-ghost btn-sm btn-icon', testid: 'kb-file-remove',
      'aria-label': t('kb.removeFile', { name: f.name }), title: t('kb.removeFile', { name: f.name }) }, '×');
    remove.addEventListener('click', () => {
      S.files = S.files.filter((x) => x !== f);
      renderFileList();
    });
    return h('li', { class: 'kb-file-row', testid: 'kb-picked-file' },
      h('span', { class: 'truncate grow', text: f.name, title: f.name }),
      h('span', { class: 'muted small mono', text: fmtBytes(f.size) }),
      problem ? h('span', { class: 'badge error', text: t(problem) }) : null,
      remove);
  }));
}

function showFormError(message, focus) {
  const ui = S.ui;
  ui.formError.textContent = message;
  ui.formError.hidden = !message;
  if (focus) {
    focus.setAttribute('aria-invalid', 'true');
    focus.focus();
  }
}

function readChunking() {
  const c = S.ui.chunking.value;
  const v = {};
  for (const [key, input] of Object.entries(S.ui.chunkParams[c])) v[key] = parseInt(input.value, 10);
  if (c === 'FIXED_SIZE') {
    return { chunkingStrategy: c, fixedSizeChunkingConfiguration: { maxTokens: v.maxTokens, overlapPercentage: v.overlapPercentage } };
  }
  if (c === 'HIERARCHICAL') {
    return {
      chunkingStrategy: c,
      hierarchicalChunkingConfiguration: {
        levelConfigurations: [{ maxTokens: v.parent }, { maxTokens: v.child }], overlapTokens: v.overlapTokens,
      },
    };
  }
  if (c === 'SEMANTIC') {
    return {
      chunkingStrategy: c,
      semanticChunkingConfiguration: {
        maxTokens: v.maxTokens, bufferSize: v.bufferSize, breakpointPercentileThreshold: v.breakpointPercentileThreshold,
      },
    };
  }
  return { chunkingStrategy: 'NONE' };
}

function validateForm() {
  const ui = S.ui;
  for (const el of ui.form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const name = ui.name.value.trim();
  if (!name) return [t('kb.err.name'), ui.name];
  if (!NAME_RE.test(name)) return [t('kb.err.namePattern'), ui.name];
  if (!ui.embedding.value) return [t('kb.err.embedding'), ui.embedding];
  if (sourceKind() === 'folder') {
    if (!ui.bucket.value.trim()) return [t('kb.err.bucket'), ui.bucket];
  } else {
    if (!S.files.length) return [t('kb.err.files'), ui.files];
    const bad = S.files.filter(fileProblem);
    if (bad.length) return [t('kb.err.badFiles', { names: bad.map((f) => f.name).join(', ') }), ui.files];
  }
  return null;
}

async function createKb() {
  const ui = S.ui;
  if (ui.create.disabled) return;
  const problem = validateForm();
  if (problem) {
    showFormError(problem[0], problem[1]);
    return;
  }
  showFormError('');
  const name = ui.name.value.trim();
  const kind = sourceKind();
  const files = kind === 'upload' ? S.files.slice() : [];
  ui.create.disabled = true;
  ui.create.textContent = t('kb.creating');
  let kb;
  try {
    const body = {
      name,
      roleArn: ROLE_ARN,
      knowledgeBaseConfiguration: {
        type: 'VECTOR', vectorKnowledgeBaseConfiguration: { embeddingModelArn: arnOf(S.embeddingModels, ui.embedding.value) },
      },
      storageConfiguration: STORAGE,
    };
    if (ui.description.value.trim()) body.description = ui.description.value.trim();
    kb = (await api().request('PUT', P.kbs, body)).knowledgeBase;
  } catch (e) {
    showFormError(t('kb.err.create', { message: errMessage(e) }), ui.name);
    resetCreateButton();
    return;
  }
  let ds;
  try {
    const dsBody = {
      name: kind === 'upload' ? 'uploads' : 'folder',
      vectorIngestionConfiguration: { chunkingConfiguration: readChunking() },
      dataSourceConfiguration: kind === 'upload' ? { type: 'CUSTOM' } : {
        type: 'S3',
        s3Configuration: { bucketArn: `arn:aws:s3:::${ui.bucket.value.trim()}` },
      },
    };
    const prefix = ui.prefix.value.trim();
    if (kind === 'folder' && prefix) dsBody.dataSourceConfiguration.s3Configuration.inclusionPrefixes = [prefix];
    ds = (await api().request('PUT', P.dss(kb.knowledgeBaseId), dsBody)).dataSource;
  } catch (e) {
    // a knowledge base without its source would only clutter the list: take it back
    try { await api().request('DELETE', P.kb(kb.knowledgeBaseId)); } catch (_) { /* reported below anyway */ }
    showFormError(t('kb.err.source', { message: errMessage(e) }), kind === 'folder' ? ui.prefix : ui.files);
    resetCreateButton();
    return;
  }
  resetCreateButton();
  S.details.set(kb.knowledgeBaseId, { kb, dataSources: [ds] });
  S.ctx.toast(t('kb.created', { name }), 'ok');
  const embedding = ui.embedding.value;
  ui.form.reset();
  ui.embedding.value = embedding;
  S.files = [];
  renderFileList();
  updateChunking();
  updateSource();
  updatePreview();
  fillEmbeddingSelect();
  if (files.length) {
    startUpload(kb.knowledgeBaseId, ds.dataSourceId, files);
  }
  await refreshList();
  S.ctx.navigate(`#/kb/${enc(kb.knowledgeBaseId)}`);
}

function resetCreateButton() {
  S.ui.create.disabled = false;
  S.ui.create.textContent = t('kb.create');
}

// ---------------------------------------------------------------------------------------------------
// uploads (IngestKnowledgeBaseDocuments into a CUSTOM data source)

function uniqueId(name, taken) {
  if (!taken.has(name)) return name;
  for (let i = 2; ; i++) {
    const id = name.replace(/(\.[^.]*)?$/, (ext) => `-${i}${ext || ''}`);
    if (!taken.has(id)) return id;
  }
}

function startUpload(kbId, dsId, files) {
  const list = S.uploads.get(dsId) || [];
  const taken = new Set();
  const entries = files.map((file) => {
    const id = uniqueId(file.name, taken);
    taken.add(id);
    return { id, name: file.name, size: file.size, file, status: 'waiting', reason: '' };
  });
  const ids = new Set(entries.map((e) => e.id));
  S.uploads.set(dsId, [...list.filter((e) => !ids.has(e.id)), ...entries]);
  renderDocs(kbId, dsId);
  uploadAll(kbId, dsId, entries);
}

function batches(entries) {
  const out = [];
  let cur = [];
  let bytes = 0;
  for (const e of entries) {
    if (cur.length && (cur.length >= DOCS_PER_CALL || bytes + e.size > BATCH_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(e);
    bytes += e.size;
  }
  if (cur.length) out.push(cur);
  return out;
}

async function uploadAll(kbId, dsId, entries) {
  for (const batch of batches(entries)) {
    for (const e of batch) e.status = 'reading';
    renderDocs(kbId, dsId);
    let documents;
    try {
      documents = await Promise.all(batch.map(async (e) => ({
        content: {
          dataSourceType: 'CUSTOM',
          custom: {
            customDocumentIdentifier: { id: e.id },
            sourceType: 'IN_LINE',
            inlineContent: { type: 'BYTE', byteContent: { mimeType: mimeOf(e.file), data: await readBase64(e.file) } },
          },
        },
      })));
      for (const e of batch) e.status = 'uploading';
      renderDocs(kbId, dsId);
      const out = await api().request('PUT', P.docs(kbId, dsId), { documents });
      for (const d of (out && out.documentDetails) || []) {
        const id = d.identifier && d.identifier.custom && d.identifier.custom.id;
        const e = batch.find((x) => x.id === id);
        if (e) {
          e.status = d.status;
          e.reason = d.statusReason || '';
        }
      }
    } catch (err) {
      for (const e of batch) {
        e.status = 'FAILED';
        e.reason = errMessage(err);
      }
      S.ctx.toast(errMessage(err), 'error');
    }
    for (const e of batch) e.file = null;   // the server has it now (or it failed): free the memory
    renderDocs(kbId, dsId);
  }
  pollDocs(kbId, dsId);
}

function pollDocs(kbId, dsId) {
  clearTimeout(S.docPolls.get(dsId));
  const seq = S.viewSeq;
  const tick = async () => {
    if (seq !== S.viewSeq) return;   // another view took over (openKb cleared the map)
    S.docPolls.set(dsId, 'busy');
    try {
      const docs = await listAll(P.docs(kbId, dsId), 'documentDetails');
      S.docs.set(dsId, docs);
      // the server's word replaces the local one once it has the document
      const local = S.uploads.get(dsId) || [];
      for (const d of docs) {
        const e = local.find((x) => d.identifier.custom && x.id === d.identifier.custom.id);
        if (e && !['waiting', 'reading', 'uploading'].includes(e.status)) {
          e.status = d.status;
          e.reason = d.statusReason || '';
        }
      }
    } catch (e) {
      if (seq === S.viewSeq) S.docPolls.delete(dsId);
      S.ctx.toast(errMessage(e), 'error');
      return;
    }
    if (seq !== S.viewSeq) return;
    renderDocs(kbId, dsId);
    const busy = docRows(dsId).some((r) => DOC_BUSY.has(r.status));
    if (busy && !S.el.hidden && S.current === kbId) S.docPolls.set(dsId, setTimeout(tick, POLL_MS));
    else S.docPolls.delete(dsId);
  };
  S.docPolls.set(dsId, setTimeout(tick, 0));
}

// rows of a data source's document table: server documents, with local upload progress layered on top
function docRows(dsId) {
  const rows = new Map();
  for (const d of S.docs.get(dsId) || []) {
    const ident = d.identifier || {};
    const id = ident.custom ? ident.custom.id : (ident.s3 && ident.s3.uri) || '';
    rows.set(id, { id, name: id, status: d.status, reason: d.statusReason || '', size: null });
  }
  for (const e of S.uploads.get(dsId) || []) {
    const row = rows.get(e.id);
    if (!row || ['waiting', 'reading', 'uploading'].includes(e.status) || (e.status === 'FAILED' && !row)) {
      rows.set(e.id, { id: e.id, name: e.name, status: e.status, reason: e.reason, size: e.size });
    } else {
      row.size = e.size;
    }
  }
  return Array.from(rows.values());
}

function statusText(status) {
  return ['waiting', 'reading', 'uploading'].includes(status) ? t(`kb.status.${status}`) : status;
}

function renderDocs(kbId, dsId) {
  if (S.current !== kbId) return;
  const box = S.ui.main.querySelector(`[data-docs-for="${CSS.escape(dsId)}"]`);
  if (!box) return;
  const rows = docRows(dsId);
  if (!rows.length) {
    box.replaceChildren(tx('p', 'kb.noDocuments', { class: 'muted small' }));
    return;
  }
  box.replaceChildren(h('ul', { class: 'kb-files', testid: 'kb-docs' }, rows.map((r) =>
    h('li', { class: 'kb-file-row', testid: 'kb-file', 'data-id': r.id },
      h('span', { class: 'truncate grow', testid: 'kb-file-name', text: r.name, title: r.name }),
      r.size !== null && r.size !== undefined ? h('span', { class: 'muted small mono', text: fmtBytes(r.size) }) : null,
      DOC_BUSY.has(r.status) ? h('span', { class: 'spinner', 'aria-hidden': 'true' }) : null,
      h('span', { class: badgeClass(r.status), testid: 'kb-file-status', 'data-status': r.status, text: statusText(r.status) }),
      r.reason ? h('span', { class: 'kb-file-reason small', testid: 'kb-file-reason', text: r.reason }) : null))));
}

// ---------------------------------------------------------------------------------------------------
// one knowledge base

async function openKb(kbId) {
  const seq = ++S.viewSeq;
  stopPolls();
  S.current = kbId;
  markActive();
  S.ui.main.replaceChildren(tx('p', 'kb.loading', { class: 'muted' }));
  let detail;
  try {
    detail = await loadDetail(kbId);
  } catch (e) {
    if (seq !== S.viewSeq) return;
    const key = e && e.status === 404 ? 'kb.notFound' : 'kb.loadFailed';
    S.ui.main.replaceChildren(h('div', { class: 'card kb-error', testid: 'kb-load-error', role: 'alert',
      text: t(key, { id: kbId, message: errMessage(e) }) }));
    return;
  }
  if (seq !== S.viewSeq) return;
  S.ui.main.replaceChildren(buildDetail(detail));
  renderList();
  refreshDetail(kbId);
}

// the latest ingestion job of each S3 data source, the documents of each CUSTOM one
function refreshDetail(kbId) {
  const detail = S.details.get(kbId);
  if (!detail) return;
  for (const ds of detail.dataSources) {
    if (dsType(ds) === 'S3') {
      if (!S.polls.has(ds.dataSourceId)) loadLatestJob(kbId, ds.dataSourceId, S.viewSeq);
    } else if (!S.docPolls.has(ds.dataSourceId)) {
      pollDocs(kbId, ds.dataSourceId);
    }
  }
}

// sets el's text now and again after every language switch (while the detail view lives)
function later(el, text) {
  el.textContent = text();
  S.ui.detail.texts.push([el, text]);
  return el;
}

function buildDetail({ kb, dataSources }) {
  const ui = S.ui;
  const d = { texts: [] };
  ui.detail = d;
  const model = shortModel(kb.knowledgeBaseConfiguration?.vectorKnowledgeBaseConfiguration?.embeddingModelArn);
  const s3 = dataSources.filter((ds) => dsType(ds) === 'S3');

  d.sync = tx('button', 'kb.sync', { type: 'button', class: 'btn btn-primary', testid: 'kb-sync' });
  d.sync.disabled = !s3.length;
  d.sync.addEventListener('click', () => syncAll(kb.knowledgeBaseId));
  d.del = tx('button', 'kb.delete', { type: 'button', class: 'btn btn-danger', testid: 'kb-delete' });
  d.confirm = h('div', { class: 'kb-confirm row', testid: 'kb-delete-panel', role: 'alertdialog', hidden: true },
    later(h('span', { class: 'grow' }), () => t('kb.deleteConfirm', { name: kb.name })),
    tx('button', 'kb.cancel', { type: 'button', class: 'btn', onclick: () => { d.confirm.hidden = true; d.del.focus(); } }),
    tx('button', 'kb.delete', { type: 'button', class: 'btn btn-danger', testid: 'kb-delete-confirm', onclick: () => deleteKb(kb) }));
  d.del.addEventListener('click', () => {
    d.confirm.hidden = false;
    d.confirm.querySelector('[data-testid="kb-delete-confirm"]').focus();
  });

  const head = h('div', { class: 'card col' },
    h('div', { class: 'row kb-head' },
      h('h1', { class: 'grow kb-title', testid: 'kb-detail-name', text: kb.name }),
      h('span', { class: badgeClass(kb.status), testid: 'kb-detail-status', text: kb.status }),
      d.sync, d.del),
    d.confirm,
    kb.description ? h('p', { class: 'muted', text: kb.description }) : null,
    h('dl', { class: 'kb-facts' },
      tx('dt', 'kb.id'), h('dd', { class: 'mono', testid: 'kb-detail-id', text: kb.knowledgeBaseId }),
      tx('dt', 'kb.embeddingModel'), h('dd', { class: 'mono', testid: 'kb-detail-model', text: model }),
      tx('dt', 'kb.createdAt'), h('dd', { text: fmtDateTime(kb.createdAt, ctx().lang()) })),
    tx('p', s3.length ? 'kb.syncHint' : 'kb.syncNone', { class: 'muted small' }));

  const sources = h('section', { class: 'card col', testid: 'kb-sources' },
    tx('h2', 'kb.dataSources'),
    dataSources.length ? dataSources.map((ds) => buildDataSource(kb, ds)) : tx('p', 'kb.noDataSources', { class: 'muted' }));

  return h('div', { class: 'kb-detail col', testid: 'kb-detail', 'data-kb-id': kb.knowledgeBaseId },
    head, sources, ...buildQuery(kb.knowledgeBaseId, S.textModels));
}

function buildDataSource(kb, ds) {
  const type = dsType(ds);
  const box = h('div', { class: 'kb-ds col', testid: 'kb-ds', 'data-ds-id': ds.dataSourceId },
    h('div', { class: 'row' },
      h('strong', { text: ds.name }),
      h('span', { class: 'badge', text: type }),
      h('span', { class: 'mono small truncate kb-ds-location', testid: 'kb-ds-location', text: dsLocation(ds), title: dsLocation(ds) }),
      h('span', { class: 'spacer' }),
      later(h('span', { class: 'muted small' }), () => t('kb.chunkingOf', { desc: chunkingText(ds) }))));
  if (type === 'S3') {
    box.append(h('div', { class: 'kb-job col', 'data-job-for': ds.dataSourceId }));
    renderJob(kb.knowledgeBaseId, ds.dataSourceId);
  } else if (type === 'CUSTOM') {
    const add = h('input', { type: 'file', multiple: true, accept: ACCEPT, testid: 'kb-add-files' });
    add.addEventListener('change', () => {
      const files = Array.from(add.files || []);
      add.value = '';
      const bad = files.filter(fileProblem);
      if (bad.length) S.ctx.toast(t('kb.err.badFiles', { names: bad.map((f) => f.name).join(', ') }), 'error');
      const good = files.filter((f) => !fileProblem(f));
      if (good.length) startUpload(kb.knowledgeBaseId, ds.dataSourceId, good);
    });
    box.append(
      field('kb.addFiles', add),
      h('div', { class: 'kb-docs', 'data-docs-for': ds.dataSourceId }));
  }
  return box;
}

async function deleteKb(kb) {
  try {
    await api().request('DELETE', P.kb(kb.knowledgeBaseId));
  } catch (e) {
    S.ctx.toast(errMessage(e), 'error');
    return;
  }
  S.details.delete(kb.knowledgeBaseId);
  S.ctx.toast(t('kb.deleted', { name: kb.name }), 'ok');
  await refreshList();
  S.ctx.navigate('#/kb');
}

// ---------------------------------------------------------------------------------------------------
// sync: StartIngestionJob per S3 data source, then GetIngestionJob until it ends

async function loadLatestJob(kbId, dsId, seq) {
  try {
    const out = await api().request('POST', P.jobs(kbId, dsId), {
      sortBy: { attribute: 'STARTED_AT', order: 'DESCENDING' }, maxResults: 1,
    });
    let job = ((out && out.ingestionJobSummaries) || [])[0] || null;
    if (seq !== S.viewSeq) return;
    if (job && !JOB_DONE.has(job.status)) {
      pollJob(kbId, dsId, job.ingestionJobId);
    } else if (job) {
      // summaries carry no failure reasons
      job = (await api().request('GET', P.job(kbId, dsId, job.ingestionJobId))).ingestionJob;
    }
    if (seq !== S.viewSeq) return;
    if (job) S.jobs.set(dsId, job);
    else S.jobs.delete(dsId);
    renderJob(kbId, dsId);
  } catch (e) {
    S.ctx.toast(errMessage(e), 'error');
  }
  updateSyncButton();
}

function updateSyncButton() {
  const d = S.ui.detail;
  if (!d || !d.sync.isConnected) return;
  const running = S.polls.size > 0;
  const detail = S.details.get(S.current);
  const s3 = detail ? detail.dataSources.filter((ds) => dsType(ds) === 'S3') : [];
  d.sync.disabled = running || !s3.length;
  d.sync.dataset.i18n = running ? 'kb.syncing' : 'kb.sync';
  d.sync.textContent = t(d.sync.dataset.i18n);
  d.sync.setAttribute('aria-busy', running ? 'true' : 'false');
}

async function syncAll(kbId) {
  const detail = S.details.get(kbId);
  if (!detail) return;
  const seq = S.viewSeq;
  const s3 = detail.dataSources.filter((ds) => dsType(ds) === 'S3');
  S.ui.detail.sync.disabled = true;
  await Promise.all(s3.map(async (ds) => {
    const dsId = ds.dataSourceId;
    try {
      const out = await api().request('PUT', P.jobs(kbId, dsId), {});
      if (seq !== S.viewSeq) return;
      S.jobs.set(dsId, out.ingestionJob);
      renderJob(kbId, dsId);
      pollJob(kbId, dsId, out.ingestionJob.ingestionJobId);
    } catch (e) {
      S.ctx.toast(t('kb.syncFailed', { message: errMessage(e) }), 'error');
    }
  }));
  updateSyncButton();
}

function pollJob(kbId, dsId, jobId) {
  clearTimeout(S.polls.get(dsId));
  const seq = S.viewSeq;
  const tick = async () => {
    if (seq !== S.viewSeq || S.el.hidden) {
      S.polls.delete(dsId);   // left the view: show() picks the job up again from ListIngestionJobs
      return;
    }
    let job;
    try {
      job = (await api().request('GET', P.job(kbId, dsId, jobId))).ingestionJob;
    } catch (e) {
      S.polls.delete(dsId);
      S.ctx.toast(errMessage(e), 'error');
      updateSyncButton();
      return;
    }
    if (seq !== S.viewSeq) return;
    S.jobs.set(dsId, job);
    renderJob(kbId, dsId);
    if (JOB_DONE.has(job.status)) {
      S.polls.delete(dsId);
      updateSyncButton();
      const st = statsOf(job);
      if (job.status === 'COMPLETE') S.ctx.toast(t('kb.syncDone', st), st.failed ? 'error' : 'ok');
      else S.ctx.toast(t('kb.syncFailed', { message: (job.failureReasons || [job.status]).join('; ') }), 'error');
      return;
    }
    S.polls.set(dsId, setTimeout(tick, POLL_MS));
  };
  S.polls.set(dsId, setTimeout(tick, POLL_MS));
  updateSyncButton();
}

function statsOf(job) {
  const s = (job && job.statistics) || {};
  const out = {};
  for (const [key, wire] of STATS) out[key] = Number(s[wire] || 0);
  return out;
}

// progress in percent: scanned / listed from haniwa's extension; 100 only once the job is COMPLETE
function progressOf(job) {
  const p = job.progress || {};
  const listed = typeof p.documentsListed === 'number' ? p.documentsListed : null;
  const scanned = typeof p.documentsScanned === 'number' ? p.documentsScanned : statsOf(job).scanned;
  if (job.status === 'COMPLETE') return { pct: 100, listed, scanned };
  if (!listed) return { pct: 0, listed, scanned };
  return { pct: Math.min(99, Math.floor((scanned / listed) * 100)), listed, scanned };
}

function progressLabel(job, pr) {
  if (job.status === 'COMPLETE') return t('kb.progress.complete', { scanned: pr.scanned });
  if (job.status === 'FAILED' || job.status === 'STOPPED') return t('kb.progress.ended', { pct: pr.pct, status: job.status });
  if (pr.listed === null) return t('kb.progress.listing');
  return t('kb.progress.count', { pct: pr.pct, scanned: pr.scanned, listed: pr.listed });
}

function renderJob(kbId, dsId) {
  if (S.current !== kbId) return;
  const box = S.ui.main.querySelector(`[data-job-for="${CSS.escape(dsId)}"]`);
  if (!box) return;
  const job = S.jobs.get(dsId);
  if (!job) {
    box.replaceChildren(tx('p', 'kb.neverSynced', { class: 'kb-callout small', testid: 'kb-never-synced' }));
    return;
  }
  const pr = progressOf(job);
  const label = progressLabel(job, pr);
  const running = !JOB_DONE.has(job.status);
  // keep the bar element across updates so its width animates
  let bar = box.querySelector('[data-testid="kb-progress"]');
  if (!bar) {
    box.replaceChildren();
    const statusEl = h('span', { testid: 'kb-status' });
    const labelEl = h('span', { class: 'mono small', testid: 'kb-progress-label', 'aria-live': 'polite' });
    const started = h('span', { class: 'muted small kb-started' });
    bar = h('div', { class: 'progress kb-progress', testid: 'kb-progress', role: 'progressbar',
      'aria-valuemin': '0', 'aria-valuemax': '100' }, h('div', { class: 'bar' }));
    const stats = h('div', { class: 'metrics kb-stats', testid: 'kb-stats' }, STATS.map(([key]) =>
      h('div', { class: 'metric inline', 'data-stat': key },
        tx('span', `kb.stat.${key}`, { class: 'label' }),
        h('span', { class: 'value', testid: `kb-stat-${key}` }))));
    const failures = h('div', { class: 'kb-failures', testid: 'kb-failures', role: 'alert', hidden: true });
    const empty = h('p', { class: 'kb-callout small', testid: 'kb-empty-source', hidden: true });
    box.append(h('div', { class: 'row' }, statusEl, labelEl, h('span', { class: 'spacer' }), started), bar, stats,
      empty, failures);
  }
  const statusEl = box.querySelector('[data-testid="kb-status"]');
  statusEl.className = badgeClass(job.status);
  statusEl.textContent = job.status;
  statusEl.dataset.status = job.status;
  box.querySelector('[data-testid="kb-progress-label"]').textContent = label;
  box.querySelector('.kb-started').textContent = t('kb.jobStarted', { time: fmtDateTime(job.startedAt, ctx().lang()) });
  bar.setAttribute('aria-valuenow', String(pr.pct));
  bar.setAttribute('aria-valuetext', label);
  bar.dataset.status = job.status;
  bar.classList.toggle('indeterminate', running && pr.listed === null);
  bar.querySelector('.bar').style.width = `${pr.pct}%`;
  const st = statsOf(job);
  for (const [key] of STATS) {
    const v = box.querySelector(`[data-testid="kb-stat-${key}"]`);
    v.textContent = String(st[key]);
    v.dataset.value = String(st[key]);
  }
  // an empty listing is not an error (S3 neither), but it is rarely what was meant
  const ds = (S.details.get(kbId) || { dataSources: [] }).dataSources.find((x) => x.dataSourceId === dsId);
  const empty = box.querySelector('[data-testid="kb-empty-source"]');
  empty.hidden = !(job.status === 'COMPLETE' && job.progress && job.progress.documentsListed === 0 && ds);
  if (!empty.hidden) {
    const paths = s3Paths(ds);
    empty.textContent = t('kb.emptySource', {
      uri: paths.map((p) => `s3://${p}`).join(', '), path: paths.join(', $HANIWA_S3_ROOT/'),
    });
  }
  const failures = box.querySelector('[data-testid="kb-failures"]');
  const reasons = job.failureReasons || [];
  failures.hidden = !reasons.length;
  failures.replaceChildren(...(reasons.length ? [
    tx('div', 'kb.failures', { class: 'section-title' }),
    h('ul', {}, reasons.map((r) => h('li', { testid: 'kb-failure', text: r }))),
  ] : []));
}

// dynamic (formatted) strings after a language switch
function rerenderDynamic() {
  if (!S.current) {
    updateChunking();
    return;
  }
  const detail = S.details.get(S.current);
  if (!detail) return;
  for (const ds of detail.dataSources) {
    renderJob(S.current, ds.dataSourceId);
    renderDocs(S.current, ds.dataSourceId);
  }
  if (S.ui.detail) for (const [el, text] of S.ui.detail.texts) el.textContent = text();
  rerenderQuery(S.current);
}
