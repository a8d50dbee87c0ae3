// haniwa playground — files for a CUSTOM data source: what may be uploaded, the upload itself
// (IngestKnowledgeBaseDocuments in batches the API accepts) and the table of documents with their status,
// polled from ListKnowledgeBaseDocuments while any is still being indexed.
//
//   ACCEPT, fileProblem(file)      the file picker's filter / why a file cannot go up (an i18n key) or null
//   startUpload(kbId, dsId, files) upload and show the progress
//   pollDocs(kbId, dsId)           read the documents (again until none is busy)
//   renderDocs(kbId, dsId)         draw the table (after a language switch too)

import { errMessage, h } from '../common/dom.js';
import { fmtBytes } from '../common/format.js';
import { api, listAll, P, POLL_MS, S } from './state.js';
import { badgeClass, t, tx } from './util.js';

const MAX_FILE_BYTES = 5 * 1024 * 1024;           // ByteContentBlob max
const DOCS_PER_CALL = 10;                         // KnowledgeBaseDocuments max
const BATCH_BYTES = 6 * 1024 * 1024;

const MIME = {
  txt: 'text/plain', text: 'text/plain', md: 'text/markdown', markdown: 'text/markdown',
  html: 'text/html', htm: 'text/html', csv: 'text/csv', json: 'application/json', pdf: 'application/pdf',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

export const ACCEPT = Object.keys(MIME).map((e) => `.${e}`).join(',');
const DOC_BUSY = new Set(['waiting', 'reading', 'uploading', 'STARTING', 'IN_PROGRESS', 'PENDING', 'DELETING', 'DELETE_IN_PROGRESS']);

function extOf(name) {
  const m = /\.([^.]+)$/.exec(name || '');
  return m ? m[1].toLowerCase() : '';
}

function mimeOf(file) {
  return MIME[extOf(file.name)] || file.type || 'text/plain';
}

export function fileProblem(file) {
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

// ---------------------------------------------------------------------------------------------------
// uploads (IngestKnowledgeBaseDocuments into a CUSTOM data source)

function uniqueId(name, taken) {
  if (!taken.has(name)) return name;
  for (let i = 2; ; i++) {
    const id = name.replace(/(\.[^.]*)?$/, (ext) => `-${i}${ext || ''}`);
    if (!taken.has(id)) return id;
  }
}

export function startUpload(kbId, dsId, files) {
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

// ---------------------------------------------------------------------------------------------------
// the documents table

export function pollDocs(kbId, dsId) {
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

export function renderDocs(kbId, dsId) {
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
