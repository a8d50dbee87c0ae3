// haniwa playground — the Knowledge-bases panel's test area for one knowledge base: Retrieve (result cards
// with a score bar, source and chunk text) and RetrieveAndGenerate (the answer with numbered citation
// markers; a marker highlights and scrolls to its passage), both on bedrock-agent-runtime.
//
//   buildQuery(kbId, textModels) → [retrieve section, retrieve-and-generate section]
//   rerenderQuery(kbId)          re-render the last results / answer (after a language switch)

import { errMessage, h } from '../common/dom.js';
import {
  arnOf, ctx, field, fillSelect, placeholder, sourceOf, submitOnEnter, t, tx,
} from './util.js';

const Q = {
  ui: {},             // the controls of the sections now shown
  models: [],         // text models for RetrieveAndGenerate
  lastResults: null,  // {kbId, results}
  lastAnswer: null,   // {kbId, out}
  rag: null,          // {kbId, sessionId} of the last answer, for follow-ups
};

export function buildQuery(kbId, textModels) {
  Q.ui = {};
  Q.models = textModels;
  if (!Q.rag || Q.rag.kbId !== kbId) Q.rag = { kbId, sessionId: null };
  return [buildRetrieve(kbId), buildRag(kbId)];
}

export function rerenderQuery(kbId) {
  const d = Q.ui;
  if (d.results && Q.lastResults && Q.lastResults.kbId === kbId) renderResults(Q.lastResults.results, d.results);
  if (d.answerBox && Q.lastAnswer && Q.lastAnswer.kbId === kbId) renderAnswer(Q.lastAnswer.out, d.answerBox);
}

// ---------------------------------------------------------------------------------------------------
// test retrieval (Retrieve)

function buildRetrieve(kbId) {
  const d = Q.ui;
  d.query = h('textarea', { testid: 'kb-query', rows: '2', 'data-autofocus': true });
  placeholder(d.query, 'kb.queryPlaceholder');
  d.k = h('input', { type: 'number', testid: 'kb-num-results', min: '1', max: '100', step: '1', value: '5' });
  d.searchType = h('select', { testid: 'kb-search-type' }, ['HYBRID', 'SEMANTIC'].map((s) => {
    const o = h('option', { value: s, text: t(`kb.search.${s}`) });
    o.dataset.i18n = `kb.search.${s}`;
    return o;
  }));
  d.retrieve = tx('button', 'kb.retrieve', { type: 'submit', class: 'btn btn-primary', testid: 'kb-retrieve' });
  d.retrieveError = h('div', { class: 'kb-error', testid: 'kb-retrieve-error', role: 'alert', hidden: true });
  d.results = h('ol', { class: 'kb-results', testid: 'kb-results' });
  const form = h('form', { class: 'col' },
    field('kb.query', d.query),
    h('div', { class: 'row top kb-controls' },
      field('kb.numResults', d.k), field('kb.searchType', d.searchType),
      h('span', { class: 'spacer' }), d.retrieve));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); runRetrieve(kbId); });
  submitOnEnter(d.query, () => runRetrieve(kbId));
  if (Q.lastResults && Q.lastResults.kbId === kbId) renderResults(Q.lastResults.results, d.results);
  return h('section', { class: 'card col', testid: 'kb-retrieve-section' },
    tx('h2', 'kb.retrieveTitle'), form, d.retrieveError, d.results);
}

async function runRetrieve(kbId) {
  const d = Q.ui;
  if (d.retrieve.disabled) return;
  const text = d.query.value.trim();
  d.retrieveError.hidden = true;
  if (!text) {
    d.retrieveError.textContent = t('kb.err.query');
    d.retrieveError.hidden = false;
    d.query.focus();
    return;
  }
  const k = Math.max(1, Math.min(100, parseInt(d.k.value, 10) || 5));
  d.retrieve.disabled = true;
  d.results.setAttribute('aria-busy', 'true');
  try {
    const out = await ctx().api.request('POST', `/knowledgebases/${encodeURIComponent(kbId)}/retrieve`, {
      retrievalQuery: { text },
      retrievalConfiguration: { vectorSearchConfiguration: { numberOfResults: k, overrideSearchType: d.searchType.value } },
    });
    const results = (out && out.retrievalResults) || [];
    Q.lastResults = { kbId, results };
    if (d === Q.ui) renderResults(results, d.results);
  } catch (e) {
    d.retrieveError.textContent = t('kb.error', { message: errMessage(e) });
    d.retrieveError.hidden = false;
  } finally {
    d.retrieve.disabled = false;
    d.results.removeAttribute('aria-busy');
  }
}

function scoreBar(score) {
  const s = Math.max(0, Math.min(1, Number(score) || 0));
  return h('span', { class: 'kb-score', testid: 'kb-score', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '1',
    'aria-valuenow': s.toFixed(3), 'aria-label': t('kb.score'), title: `${t('kb.score')} ${s.toFixed(3)}` },
  h('span', { class: 'kb-score-bar', style: { width: `${(s * 100).toFixed(1)}%` } }));
}

function renderResults(results, box) {
  if (!results.length) {
    box.replaceChildren(tx('li', 'kb.noResults', { class: 'muted kb-none', testid: 'kb-no-results' }));
    return;
  }
  box.replaceChildren(...results.map((r, i) => {
    const src = sourceOf(r.location);
    const meta = r.metadata ? JSON.stringify(r.metadata, null, 2) : '';
    return h('li', { class: 'kb-result', testid: 'kb-result', 'data-rank': String(i + 1) },
      h('div', { class: 'row nowrap kb-result-head' },
        h('span', { class: 'kb-rank mono', text: `#${i + 1}` }),
        scoreBar(r.score),
        h('span', { class: 'mono small kb-score-value', testid: 'kb-score-value', text: Number(r.score || 0).toFixed(3) }),
        h('span', { class: 'mono small truncate grow kb-source', testid: 'kb-result-source', text: src, title: src })),
      h('div', { class: 'pre kb-chunk', testid: 'kb-result-text', text: (r.content && r.content.text) || '' }),
      meta ? h('details', { class: 'kb-meta' }, tx('summary', 'kb.metadata', { class: 'small muted' }),
        h('pre', { class: 'code', text: meta })) : null);
  }));
}

// ---------------------------------------------------------------------------------------------------
// retrieve and generate, with numbered citations

function buildRag(kbId) {
  const d = Q.ui;
  d.ragModel = h('select', { testid: 'kb-rag-model' });
  let saved = null;
  try { saved = localStorage.getItem('haniwa.kb.ragModel'); } catch (_) { /* ignore */ }
  fillSelect(d.ragModel, Q.models, 'kb.noTextModels', saved);
  d.ragModel.addEventListener('change', () => {
    try { localStorage.setItem('haniwa.kb.ragModel', d.ragModel.value); } catch (_) { /* ignore */ }
  });
  d.question = h('textarea', { testid: 'kb-rag-question', rows: '2' });
  placeholder(d.question, 'kb.ragPlaceholder');
  d.followup = h('input', { type: 'checkbox', testid: 'kb-rag-followup' });
  d.followup.disabled = !(Q.rag && Q.rag.sessionId);
  d.ask = tx('button', 'kb.ask', { type: 'submit', class: 'btn btn-primary', testid: 'kb-rag-ask' });
  d.ragError = h('div', { class: 'kb-error', testid: 'kb-rag-error', role: 'alert', hidden: true });
  d.answerBox = h('div', { class: 'col kb-answer-box', 'aria-live': 'polite' });
  const form = h('form', { class: 'col' },
    field('kb.ragModel', d.ragModel),
    field('kb.ragQuestion', d.question),
    h('div', { class: 'row' },
      h('label', { class: 'check small' }, d.followup, tx('span', 'kb.ragFollowup')),
      h('span', { class: 'spacer' }), d.ask));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); runRag(kbId); });
  submitOnEnter(d.question, () => runRag(kbId));
  if (Q.lastAnswer && Q.lastAnswer.kbId === kbId) renderAnswer(Q.lastAnswer.out, d.answerBox);
  return h('section', { class: 'card col', testid: 'kb-rag-section' },
    tx('h2', 'kb.ragTitle'), form, d.ragError, d.answerBox);
}

async function runRag(kbId) {
  const d = Q.ui;
  if (d.ask.disabled) return;
  const text = d.question.value.trim();
  d.ragError.hidden = true;
  if (!text) {
    d.ragError.textContent = t('kb.err.question');
    d.ragError.hidden = false;
    d.question.focus();
    return;
  }
  if (!d.ragModel.value) {
    d.ragError.textContent = t('kb.err.model');
    d.ragError.hidden = false;
    return;
  }
  const body = {
    input: { text },
    retrieveAndGenerateConfiguration: {
      type: 'KNOWLEDGE_BASE',
      knowledgeBaseConfiguration: { knowledgeBaseId: kbId, modelArn: arnOf(Q.models, d.ragModel.value) },
    },
  };
  if (d.followup.checked && Q.rag && Q.rag.sessionId) body.sessionId = Q.rag.sessionId;
  d.ask.disabled = true;
  d.ask.textContent = t('kb.asking');
  d.answerBox.setAttribute('aria-busy', 'true');
  d.answerBox.replaceChildren(h('span', { class: 'spinner', 'aria-hidden': 'true' }));
  try {
    const out = await ctx().api.request('POST', '/retrieveAndGenerate', body);
    Q.rag = { kbId, sessionId: out.sessionId || null };
    Q.lastAnswer = { kbId, out };
    if (d === Q.ui) {
      renderAnswer(out, d.answerBox);
      d.followup.disabled = !Q.rag.sessionId;
    }
  } catch (e) {
    d.answerBox.replaceChildren();
    d.ragError.textContent = t('kb.error', { message: errMessage(e) });
    d.ragError.hidden = false;
  } finally {
    d.ask.disabled = false;
    d.ask.textContent = t('kb.ask');
    d.answerBox.removeAttribute('aria-busy');
  }
}

// Distinct passages across all citations, numbered in order of first citation.
function collectPassages(citations) {
  const passages = [];
  const index = new Map();
  const perCitation = citations.map((c) => (c.retrievedReferences || []).map((r) => {
    const src = sourceOf(r.location);
    const text = (r.content && r.content.text) || '';
    const key = `${src}\u0000${text}`;
    if (!index.has(key)) {
      passages.push({ n: passages.length + 1, source: src, text });
      index.set(key, passages.length);
    }
    return index.get(key);
  }));
  return { passages, perCitation };
}

function renderAnswer(out, box) {
  const text = (out.output && out.output.text) || '';
  const citations = out.citations || [];
  const { passages, perCitation } = collectPassages(citations);
  const answer = h('div', { class: 'kb-answer pre', testid: 'kb-answer' });
  // spans are code-point offsets (end inclusive) into the answer
  const cps = Array.from(text);
  const order = citations.map((c, i) => i).filter((i) => perCitation[i].length)
    .sort((a, b) => spanOf(citations[a]).start - spanOf(citations[b]).start);
  let cursor = 0;
  for (const i of order) {
    const span = spanOf(citations[i]);
    const start = Math.max(cursor, Math.min(cps.length, span.start));
    const end = Math.max(start, Math.min(cps.length, span.end + 1));
    if (start > cursor) answer.append(cps.slice(cursor, start).join(''));
    if (end > start) answer.append(h('span', { class: 'kb-cited', 'data-citation': String(i), text: cps.slice(start, end).join('') }));
    cursor = Math.max(cursor, end);
    const marks = h('sup', { class: 'kb-marks' });
    for (const n of perCitation[i]) {
      const b = h('button', { type: 'button', class: 'kb-cite', testid: 'kb-citation', 'data-passage': String(n),
        'data-citation': String(i), 'aria-label': t('kb.citeLabel', { n }), title: passages[n - 1].source, text: `[${n}]` });
      b.addEventListener('click', () => focusPassage(box, n, i));
      marks.append(b);
    }
    answer.append(marks);
  }
  if (cursor < cps.length) answer.append(cps.slice(cursor).join(''));

  const list = h('ol', { class: 'kb-passages', testid: 'kb-passages' }, passages.map((p) =>
    h('li', { class: 'kb-passage', testid: 'kb-passage', 'data-passage': String(p.n), tabindex: '-1' },
      h('div', { class: 'row nowrap' },
        h('span', { class: 'kb-passage-num mono', text: `[${p.n}]` }),
        h('span', { class: 'mono small truncate grow', testid: 'kb-passage-source', text: p.source, title: p.source })),
      h('div', { class: 'pre kb-chunk', testid: 'kb-passage-text', text: p.text }))));
  box.replaceChildren(
    answer,
    out.sessionId ? h('div', { class: 'muted small mono', testid: 'kb-session', text: t('kb.session', { id: out.sessionId }) }) : null,
    passages.length ? tx('h3', 'kb.passages', { class: 'section-title' }) : tx('p', 'kb.noCitations', { class: 'muted small' }),
    list);
}

function spanOf(c) {
  const part = (c.generatedResponsePart && c.generatedResponsePart.textResponsePart) || {};
  const span = part.span || {};
  return { start: Number(span.start) || 0, end: Number.isFinite(Number(span.end)) ? Number(span.end) : -1 };
}

function focusPassage(box, n, citation) {
  for (const el of box.querySelectorAll('.kb-passage.active, .kb-cited.active, .kb-cite.active')) {
    el.classList.remove('active');
    if (el.dataset.active) delete el.dataset.active;
  }
  const p = box.querySelector(`.kb-passage[data-passage="${n}"]`);
  const span = box.querySelector(`.kb-cited[data-citation="${citation}"]`);
  const marker = box.querySelector(`.kb-cite[data-citation="${citation}"][data-passage="${n}"]`);
  for (const el of [p, span, marker]) {
    if (!el) continue;
    el.classList.add('active');
    el.dataset.active = 'true';
  }
  if (p) {
    const still = window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    p.scrollIntoView({ block: 'nearest', behavior: still ? 'auto' : 'smooth' });
    p.focus({ preventScroll: true });
  }
}
