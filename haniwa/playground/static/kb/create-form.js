// haniwa playground — the Knowledge-bases panel's create form: name, embedding model, chunking and the
// source (a folder, i.e. an S3 data source, or uploaded files, i.e. a CUSTOM one); CreateKnowledgeBase then
// CreateDataSource, and the picked files go up once both exist.
//
//   buildForm() → <form>          once, from the panel's shell
//   fillEmbeddingSelect()          after the models are loaded
//   updateChunking(), updatePreview(), renderFileList()   re-render (after a language switch)

import { errMessage, h } from '../common/dom.js';
import { fmtBytes } from '../common/format.js';
import { ACCEPT, fileProblem, startUpload } from './documents.js';
import { refreshList } from './list.js';
import { api, enc, P, S } from './state.js';
import { arnOf, field, fillSelect, placeholder, t, tx } from './util.js';

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
const CHUNKINGS = ['FIXED_SIZE', 'HIERARCHICAL', 'SEMANTIC', 'NONE'];

const CHUNK_PARAMS = {
  FIXED_SIZE: [['maxTokens', 'kb-max-tokens', 'kb.maxTokens', 300], ['overlapPercentage', 'kb-overlap', 'kb.overlap', 20]],
  HIERARCHICAL: [['parent', 'kb-parent-tokens', 'kb.parentTokens', 1500], ['child', 'kb-child-tokens', 'kb.childTokens', 300],
    ['overlapTokens', 'kb-overlap-tokens', 'kb.overlapTokens', 60]],
  SEMANTIC: [['maxTokens', 'kb-semantic-max-tokens', 'kb.maxTokens', 300], ['bufferSize', 'kb-buffer-size', 'kb.bufferSize', 0],
    ['breakpointPercentileThreshold', 'kb-breakpoint', 'kb.breakpoint', 95]],
  NONE: [],
};

// ---------------------------------------------------------------------------------------------------
// building the form

export function fillEmbeddingSelect() {
  const sel = S.ui.embedding;
  if (!sel) return;
  const pref = S.embeddingModels.find((m) => /titan-embed-text-v2/.test(m.modelId)) || S.embeddingModels[0];
  fillSelect(sel, S.embeddingModels, 'kb.noEmbedding', pref && pref.modelId);
}

function numberInput(testid, value) {
  return h('input', { type: 'number', id: testid, testid, value: String(value), min: '0', step: '1', inputmode: 'numeric' });
}

export function buildForm() {
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

export function updateChunking() {
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

export function updatePreview() {
  const ui = S.ui;
  if (!ui.preview) return;
  const bucket = ui.bucket.value.trim() || '<bucket>';
  const prefix = ui.prefix.value.trim();
  ui.preview.textContent = t('kb.folderPreview', { uri: `s3://${bucket}/${prefix}`, path: `${bucket}/${prefix}` });
}

export function renderFileList() {
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

// ---------------------------------------------------------------------------------------------------
// checking and creating

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
