// haniwa playground — Knowledge bases panel (#/kb: list + create form, #/kb/<knowledgeBaseId>: one KB).
//
// Everything goes through the Bedrock REST API the SDKs use: bedrock (ListFoundationModels),
// bedrock-agent (knowledge bases, data sources, ingestion jobs, IngestKnowledgeBaseDocuments) and
// bedrock-agent-runtime (Retrieve, RetrieveAndGenerate). Ingestion jobs carry haniwa's `progress`
// extension ({documentsListed, documentsScanned}) so the sync bar knows its 100%.
// User, model and document text is only ever rendered with textContent.
//
// Modules: panel.js (entry points, one knowledge base's page), list.js (the sidebar), create-form.js
// (the new-knowledge-base form), documents.js (uploads and a CUSTOM source's documents), sync.js
// (ingestion jobs of S3 sources), query.js (Retrieve, RetrieveAndGenerate), state.js (the panel's state
// and Bedrock paths), util.js (KB helpers), strings.js (en/ja strings), kb.css.

import './strings.js';
import { errMessage, h } from '../common/dom.js';
import { fmtDateTime } from '../common/format.js';
import { definePanel } from '../common/panel.js';
import {
  buildForm, fillEmbeddingSelect, renderFileList, updateChunking, updatePreview,
} from './create-form.js';
import { ACCEPT, fileProblem, pollDocs, renderDocs, startUpload } from './documents.js';
import { markActive, refreshList, renderList } from './list.js';
import { buildQuery, rerenderQuery } from './query.js';
import { api, loadDetail, P, S } from './state.js';
import { loadLatestJob, renderJob, syncAll } from './sync.js';
import { badgeClass, ctx, dsType, field, s3Paths, setContext, shortModel, t, tx } from './util.js';

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

function dsLocation(ds) {
  const type = dsType(ds);
  if (type === 'S3') return s3Paths(ds).map((p) => `s3://${p}`).join(', ');
  if (type === 'CUSTOM') return t('kb.uploaded');
  return type;
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
