// haniwa playground — the Knowledge-bases panel's sidebar: every knowledge base, with its embedding model
// and data sources filled in from GetKnowledgeBase / ListDataSources, the open one marked.
//
//   refreshList()   ListKnowledgeBases again, then render
//   renderList()    draw S.kbs (after a language switch too)
//   markActive()    mark S.current in the list

import { errMessage, h } from '../common/dom.js';
import { enc, listAll, loadDetail, P, S } from './state.js';
import { badgeClass, dsType, shortModel, t } from './util.js';

export async function refreshList() {
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

export function renderList() {
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

export function markActive() {
  for (const a of S.ui.list.querySelectorAll('.kb-item')) {
    const on = a.dataset.kbId === S.current;
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}
