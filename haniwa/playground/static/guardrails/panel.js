// haniwa playground — Guardrails panel (#/guardrails).
//
// Speaks Bedrock's guardrail API, as a boto3 user would: ListGuardrails, GetGuardrail (the DRAFT, shown
// back in CreateGuardrail's member names), CreateGuardrail / UpdateGuardrail (edit the DRAFT),
// CreateGuardrailVersion, and ApplyGuardrail with outputScope FULL to try a text, each match highlighted
// in the text; and the DRAFT against the latest version over a list of texts, listing every decision
// that flips. Spans are where each assessment's `match` occurs in the text (content filters and topics
// carry no match on the wire: they are shown as chips). Text is rendered with textContent only.

import './strings.js';
import { errMessage, h, tx } from '../common/dom.js';
import { definePanel } from '../common/panel.js';

const POLICIES = ['topicPolicy', 'contentPolicy', 'wordPolicy', 'sensitiveInformationPolicy', 'contextualGroundingPolicy'];
const SAMPLE = {
  name: 'my-guardrail',
  blockedInputMessaging: '申し訳ありませんが、その内容にはお答えできません。',
  blockedOutputsMessaging: '回答を表示できません。',
  wordPolicyConfig: { wordsConfig: [{ text: '競合他社' }] },
  sensitiveInformationPolicyConfig: { piiEntitiesConfig: [{ type: 'PHONE', action: 'ANONYMIZE' }] },
};
const enc = encodeURIComponent;

// GetGuardrail's answer back in CreateGuardrail's names (wordPolicy.words → wordPolicyConfig.wordsConfig)
export function configOf(got) {
  const out = { name: got.name, blockedInputMessaging: got.blockedInputMessaging, blockedOutputsMessaging: got.blockedOutputsMessaging };
  if (got.description) out.description = got.description;
  for (const p of POLICIES) {
    if (!got[p]) continue;
    const cfg = {};
    for (const [k, v] of Object.entries(got[p])) cfg[Array.isArray(v) ? `${k}Config` : k] = v;
    out[`${p}Config`] = cfg;
  }
  return out;
}

// what an assessment says: every finding as {policy, label, action, match}
export function findingsOf(assessment) {
  const out = [];
  const a = assessment || {};
  for (const w of (a.wordPolicy && a.wordPolicy.customWords) || []) out.push({ policy: 'word', label: w.match, action: w.action, match: w.match });
  for (const w of (a.wordPolicy && a.wordPolicy.managedWordLists) || []) out.push({ policy: 'word', label: w.type, action: w.action, match: w.match });
  for (const p of (a.sensitiveInformationPolicy && a.sensitiveInformationPolicy.piiEntities) || []) out.push({ policy: 'pii', label: p.type, action: p.action, match: p.match });
  for (const r of (a.sensitiveInformationPolicy && a.sensitiveInformationPolicy.regexes) || []) out.push({ policy: 'regex', label: r.name, action: r.action, match: r.match });
  for (const f of (a.contentPolicy && a.contentPolicy.filters) || []) if (f.detected) out.push({ policy: 'content', label: `${f.type} ${f.confidence}`, action: f.action });
  for (const t of (a.topicPolicy && a.topicPolicy.topics) || []) out.push({ policy: 'topic', label: t.name, action: t.action });
  for (const f of (a.contextualGroundingPolicy && a.contextualGroundingPolicy.filters) || []) if (f.detected) out.push({ policy: 'grounding', label: `${f.type} ${f.score}<${f.threshold}`, action: f.action });
  return out;
}

// the text with every match wrapped in <mark> (first occurrence after the previous one), plus chips
function highlighted(text, findings) {
  const spans = [];
  for (const f of findings) {
    if (!f.match) continue;
    const at = text.indexOf(f.match);
    if (at >= 0) spans.push([at, at + f.match.length, f]);
  }
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  const parts = [];
  let pos = 0;
  for (const [s, e, f] of spans) {
    if (s < pos) continue;
    parts.push(text.slice(pos, s));
    parts.push(h('mark', { class: f.action === 'BLOCKED' ? 'gr-block' : '', title: `${f.policy}/${f.label} ${f.action}`, testid: 'gr-mark' }, text.slice(s, e)));
    pos = e;
  }
  parts.push(text.slice(pos));
  const chips = findings.filter((f) => !f.match).map((f) => h('span', { class: 'gr-chip', testid: 'gr-chip' }, `${f.policy}/${f.label} ${f.action}`));
  return h('div', { class: 'gr-highlight' }, ...parts, chips.length ? h('div', {}, ...chips) : null);
}

const S = { ctx: null, ui: {}, id: null };

async function apply(id, version, text, source) {
  return S.ctx.api.request('POST', `/guardrail/${enc(id)}/version/${enc(version)}/apply`, {
    source, content: [{ text: { text } }], outputScope: 'FULL',
  });
}

function outcome(res) {
  if (res.action !== 'GUARDRAIL_INTERVENED') return 'PASSED';
  return (res.actionReason || '').includes('blocked') ? 'BLOCKED' : 'MASKED';
}

async function refresh(select) {
  const { ctx, ui } = S;
  const list = (await ctx.api.request('GET', '/guardrails?maxResults=1000')).guardrails || [];
  ui.pick.replaceChildren(...list.map((g) => h('option', { value: g.id, selected: g.id === select }, `${g.name} (${g.id})`)));
  ui.empty.hidden = list.length > 0;
  S.id = select || (list[0] && list[0].id) || null;
  if (S.id) {
    ui.pick.value = S.id;
    const got = await ctx.api.request('GET', `/guardrails/${enc(S.id)}?guardrailVersion=DRAFT`);
    ui.config.value = JSON.stringify(configOf(got), null, 2);
  } else {
    ui.config.value = JSON.stringify(SAMPLE, null, 2);
  }
}

async function latestVersion() {
  const got = await S.ctx.api.request('GET', `/guardrails?guardrailIdentifier=${enc(S.id)}&maxResults=1000`);
  const numbers = (got.guardrails || []).map((g) => g.version).filter((v) => v !== 'DRAFT').map(Number);
  return numbers.length ? String(Math.max(...numbers)) : null;
}

async function run(fn) {
  try { await fn(); } catch (e) { S.ctx.toast(errMessage(e), 'error'); }
}

export default definePanel({
  stylesheets: [new URL('guardrails.css', import.meta.url)],
  mount(el, ctx) {
    S.ctx = ctx;
    const ui = S.ui;
    ui.pick = h('select', { testid: 'gr-pick', onchange: () => run(() => refresh(ui.pick.value)) });
    ui.empty = tx(ctx, 'p', 'gr.none');
    ui.config = h('textarea', { class: 'gr-config', testid: 'gr-config', spellcheck: 'false' });
    ui.text = h('textarea', { rows: 3, testid: 'gr-text' });
    ui.source = h('select', { testid: 'gr-source' }, h('option', { value: 'INPUT' }, 'INPUT'), h('option', { value: 'OUTPUT' }, 'OUTPUT'));
    ui.result = h('div', { testid: 'gr-result' });
    ui.texts = h('textarea', { rows: 5, testid: 'gr-texts' });
    ui.diff = h('div', { testid: 'gr-diff' });
    const button = (key, testid, fn) => h('button', { type: 'button', testid, onclick: () => run(fn) }, ctx.t(key));
    el.append(h('div', { class: 'gr' },
      tx(ctx, 'h2', 'gr.title'),
      h('div', { class: 'gr-row' }, tx(ctx, 'label', 'gr.pick'), ui.pick), ui.empty,
      tx(ctx, 'label', 'gr.config'), ui.config,
      h('div', { class: 'gr-row' },
        button('gr.create', 'gr-create', async () => {
          const made = await ctx.api.request('POST', '/guardrails', JSON.parse(ui.config.value));
          await refresh(made.guardrailId);
        }),
        button('gr.save', 'gr-save', async () => {
          await ctx.api.request('PUT', `/guardrails/${enc(S.id)}`, JSON.parse(ui.config.value));
          ctx.toast(ctx.t('gr.saved'), 'ok');
        }),
        button('gr.version', 'gr-version', async () => {
          const made = await ctx.api.request('POST', `/guardrails/${enc(S.id)}`, {});
          ctx.toast(ctx.t('gr.versioned', { v: made.version }), 'ok');
        })),
      tx(ctx, 'h3', 'gr.try'), ui.text,
      h('div', { class: 'gr-row' }, tx(ctx, 'label', 'gr.source'), ui.source,
        button('gr.apply', 'gr-apply', async () => {
          const res = await apply(S.id, 'DRAFT', ui.text.value, ui.source.value);
          const findings = findingsOf((res.assessments || [])[0]);
          const out = (res.outputs || []).map((o) => o.text).join('\n');
          ui.result.replaceChildren(
            h('p', { testid: 'gr-outcome' }, `${outcome(res)}${out ? ` → ${out}` : ''}`),
            highlighted(ui.text.value, findings));
        })),
      ui.result,
      tx(ctx, 'h3', 'gr.diff'), ui.texts,
      button('gr.compare', 'gr-compare', async () => {
        const version = await latestVersion();
        if (!version) { ctx.toast(ctx.t('gr.noVersion'), 'error'); return; }
        const texts = ui.texts.value.split('\n').filter((s) => s.trim());
        const rows = [];
        for (const text of texts) {
          const [a, b] = await Promise.all([apply(S.id, version, text, 'INPUT'), apply(S.id, 'DRAFT', text, 'INPUT')]);
          const fa = findingsOf(a.assessments[0]).filter((f) => f.action !== 'NONE');
          const fb = findingsOf(b.assessments[0]).filter((f) => f.action !== 'NONE');
          const key = (f) => `${f.policy}/${f.label}/${f.action}`;
          const ka = new Set(fa.map(key));
          const kb = new Set(fb.map(key));
          if (outcome(a) === outcome(b) && ka.size === kb.size && [...ka].every((k) => kb.has(k))) continue;
          rows.push(h('tr', { testid: 'gr-flip' },
            h('td', {}, highlighted(text, [...fa.filter((f) => !kb.has(key(f))), ...fb.filter((f) => !ka.has(key(f)))])),
            h('td', {}, outcome(a)), h('td', {}, outcome(b))));
        }
        ui.diff.replaceChildren(
          h('p', { testid: 'gr-flip-count' }, ctx.t('gr.flips', { n: rows.length, m: texts.length, v: version })),
          h('table', {}, h('tr', {}, h('th', {}, ''), h('th', {}, `v${version}`), h('th', {}, 'DRAFT')), ...rows));
      }),
      ui.diff));
  },
  async show() {
    await run(() => refresh(S.id));
  },
});
