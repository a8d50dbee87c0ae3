// haniwa playground — Agents panel (#/agents, #/agents/<agentId>).
//
// Everything goes through the public Bedrock API, as boto3 would: bedrock-agent (ListAgents, GetAgent,
// ListAgentAliases, ListAgentActionGroups + GetAgentActionGroup, ListAgentKnowledgeBases +
// GetKnowledgeBase, PrepareAgent) and bedrock-agent-runtime InvokeAgent (api.invokeAgent: `chunk`,
// `trace` and `returnControl` events). The trace timeline is drawn by trace.js and the
// return-of-control form by return-control.js. Model and user text is always rendered with textContent.

import './strings.js';
import { errMessage, h, isAbort, tx } from '../common/dom.js';
import { definePanel } from '../common/panel.js';
import { epoch, relTime } from '../common/format.js';
import { tf, setTf, retranslate, snippet, sourceOf, Trace } from './trace.js';
import { returnControlForm } from './return-control.js';

const DRAFT_ALIAS = 'TSTALIASID';
const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------------------
// small helpers

function statusBadge(status, testid) {
  const kind = status === 'PREPARED' ? 'ok' : status === 'FAILED' ? 'error'
    : status === 'NOT_PREPARED' ? 'warn' : '';
  return h('span', { class: `badge ${kind}`.trim(), testid, text: status || '?' });
}

function section(ctx, titleKey, testid, ...children) {
  return h('section', { class: 'card ag-card', testid },
    tx(ctx, 'h2', titleKey, { class: 'section-title' }), ...children);
}

// ---------------------------------------------------------------------------------------------------
// panel state

const S = {
  ctx: null,
  el: null,
  agents: [],         // ListAgents summaries (+ foundationModel from GetAgent)
  agentId: null,      // the open agent
  detail: null,       // {agent, aliases, groups, kbs}
  aliasId: DRAFT_ALIAS,
  sessionId: null,
  turns: [],
  busy: false,
  abort: null,
  loadSeq: 0,
  ui: {},
};

export default definePanel({
  stylesheets: [new URL('agents.css', import.meta.url)],
  mount,
  show,
});

async function mount(el, ctx) {
  S.ctx = ctx;
  S.el = el;
  buildUi(el, ctx);
  ctx.onLangChange(() => {
    renderList();
    if (S.detail) renderDetail();
    retranslate(ctx, el);
  });
  await refreshList();
}

async function show(el, ctx, args) {
  const id = (args && args[0]) || null;
  if (!id) {
    closeAgent();
    return;
  }
  if (id === S.agentId && S.detail) {
    S.ui.input.focus();
    return;
  }
  await openAgent(id);
}

// list all pages of a bedrock-agent List* operation (POST with maxResults / nextToken)
async function listAll(path, key) {
  const out = [];
  let token = null;
  do {
    const body = { maxResults: 100 };
    if (token) body.nextToken = token;
    const res = await S.ctx.api.request('POST', path, body);
    out.push(...((res && res[key]) || []));
    token = res && res.nextToken;
  } while (token && out.length < 2000);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// layout

function buildUi(el, ctx) {
  const ui = S.ui;
  el.replaceChildren();

  // sidebar: the agents -------------------------------------------------------------------------
  ui.refresh = h('button', {
    type: 'button', class: 'btn btn-ghost btn-sm btn-icon', testid: 'agents-refresh', 'aria-label': ctx.t('agents.refresh'),
    title: ctx.t('agents.refresh'),
  }, '↻');
  ui.refresh.dataset.i18nTitle = 'agents.refresh';
  ui.refresh.dataset.i18nAriaLabel = 'agents.refresh';
  ui.refresh.addEventListener('click', async () => {
    await refreshList();
    if (S.agentId) await openAgent(S.agentId, { keepSession: true });
  });
  ui.list = h('ul', { class: 'list ag-list', testid: 'agents-list' });
  ui.listEmpty = tx(ctx, 'p', 'agents.empty', { class: 'empty small', testid: 'agents-empty', hidden: true });
  const sidebar = h('aside', { class: 'sidebar ag-sidebar' },
    h('div', { class: 'row between nowrap' }, tx(ctx, 'h2', 'agents.title', { class: 'section-title' }), ui.refresh),
    ui.list, ui.listEmpty);

  // main: the open agent ------------------------------------------------------------------------
  ui.placeholder = tx(ctx, 'p', 'agents.pick', { class: 'empty ag-placeholder', testid: 'agent-placeholder' });
  ui.head = h('header', { class: 'ag-head' });
  ui.info = h('div', { class: 'ag-info' });
  ui.test = buildTest(ctx);
  ui.detail = h('div', { class: 'ag-detail', testid: 'agent-detail', hidden: true },
    ui.head, h('div', { class: 'ag-cols' }, ui.info, ui.test));
  const main = h('div', { class: 'main ag-main' }, ui.placeholder, ui.detail);
  el.append(h('div', { class: 'sidebar-layout ag-layout' }, sidebar, main));
}

function buildTest(ctx) {
  const ui = S.ui;
  ui.alias = h('select', { id: 'agent-alias', testid: 'agent-alias', class: 'ag-alias-select' });
  ui.alias.addEventListener('change', () => {
    S.aliasId = ui.alias.value;
    newSession();
  });
  ui.session = h('code', { class: 'ag-session-id small truncate', testid: 'agent-session' });
  ui.newSession = tx(ctx, 'button', 'agents.newSession', { type: 'button', class: 'btn btn-sm', testid: 'agent-new-session' });
  ui.newSession.addEventListener('click', () => {
    newSession();
    ui.input.focus();
  });
  ui.warning = h('p', { class: 'ag-warning small', testid: 'agent-not-prepared', hidden: true });
  ui.hint = tx(ctx, 'p', 'agents.startHint', { class: 'empty small ag-hint' });
  ui.log = h('div', { class: 'ag-log', testid: 'agent-log', role: 'log', 'aria-live': 'polite' }, ui.hint);
  ui.log.dataset.i18nAriaLabel = 'agents.log';
  ui.log.setAttribute('aria-label', ctx.t('agents.log'));

  ui.input = h('textarea', { id: 'agent-input', testid: 'agent-input', rows: '2', 'data-autofocus': true });
  ui.input.dataset.i18nPlaceholder = 'agents.inputPlaceholder';
  ui.input.placeholder = ctx.t('agents.inputPlaceholder');
  ui.input.setAttribute('aria-label', ctx.t('agents.inputPlaceholder'));
  ui.input.dataset.i18nAriaLabel = 'agents.inputPlaceholder';
  ui.input.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || ev.shiftKey) return;
    if (ev.isComposing || ev.keyCode === 229) return;   // IME: Enter confirms the conversion
    ev.preventDefault();
    send();
  });
  ui.send = tx(ctx, 'button', 'agents.send', { type: 'submit', class: 'btn btn-primary', testid: 'agent-send' });
  ui.stop = tx(ctx, 'button', 'agents.stop', { type: 'button', class: 'btn btn-danger', testid: 'agent-stop', hidden: true });
  ui.stop.addEventListener('click', stopRun);
  const form = h('form', { class: 'ag-composer' }, ui.input, ui.send, ui.stop);
  form.addEventListener('submit', (ev) => { ev.preventDefault(); send(); });

  return h('section', { class: 'card ag-test', testid: 'agent-test' },
    h('div', { class: 'row ag-test-head' },
      tx(ctx, 'h2', 'agents.test', { class: 'section-title' }),
      h('label', { class: 'row nowrap ag-alias-field' }, tx(ctx, 'span', 'agents.alias', { class: 'muted small' }), ui.alias),
      h('span', { class: 'spacer' }),
      h('span', { class: 'row nowrap ag-session' }, tx(ctx, 'span', 'agents.session', { class: 'muted small' }), ui.session),
      ui.newSession),
    ui.warning, ui.log, form);
}

// ---------------------------------------------------------------------------------------------------
// the agents list

async function refreshList() {
  const { ctx } = S;
  try {
    const summaries = await listAll('/agents/', 'agentSummaries');
    // the summary has no model: GetAgent tells it
    const full = await Promise.all(summaries.map((a) =>
      ctx.api.request('GET', `/agents/${enc(a.agentId)}/`).then((r) => (r && r.agent) || {}, () => ({}))));
    S.agents = summaries.map((a, i) => ({ ...a, foundationModel: full[i].foundationModel || '' }));
    S.agents.sort((a, b) => (epoch(b.updatedAt) || 0) - (epoch(a.updatedAt) || 0));
  } catch (e) {
    ctx.toast(ctx.t('agents.loadFailed', { message: errMessage(e) }), 'error');
    S.agents = [];
  }
  renderList();
}

function renderList() {
  const { ui, ctx } = S;
  ui.list.replaceChildren();
  for (const a of S.agents) {
    const active = a.agentId === S.agentId;
    const link = h('a', {
      class: `list-item ag-item${active ? ' active' : ''}`, href: `#/agents/${enc(a.agentId)}`, testid: 'agents-item',
      'aria-current': active ? 'page' : null,
    },
    h('span', { class: 'body' },
      h('span', { class: 'title', testid: 'agents-item-name', text: a.agentName || a.agentId }),
      h('span', { class: 'meta mono', testid: 'agents-item-id', text: a.agentId }),
      h('span', { class: 'meta', testid: 'agents-item-model', text: a.foundationModel || ctx.t('agents.noModel') }),
      h('span', { class: 'meta', testid: 'agents-item-updated', text: ctx.t('agents.updated', { when: relTime(ctx, a.updatedAt) }) })),
    statusBadge(a.agentStatus, 'agents-item-status'));
    link.dataset.agentId = a.agentId;
    ui.list.append(h('li', {}, link));
  }
  ui.listEmpty.hidden = S.agents.length > 0;
}

// ---------------------------------------------------------------------------------------------------
// one agent

function closeAgent() {
  stopRun();
  S.loadSeq += 1;
  S.agentId = null;
  S.detail = null;
  S.ui.detail.hidden = true;
  S.ui.placeholder.hidden = false;
  renderList();
}

async function openAgent(id, opts = {}) {
  const { ctx } = S;
  const seq = ++S.loadSeq;
  const base = `/agents/${enc(id)}`;
  let detail;
  try {
    const [agentRes, aliases, summaries, kbs] = await Promise.all([
      ctx.api.request('GET', `${base}/`),
      listAll(`${base}/agentaliases/`, 'agentAliasSummaries'),
      listAll(`${base}/agentversions/DRAFT/actiongroups/`, 'actionGroupSummaries'),
      listAll(`${base}/agentversions/DRAFT/knowledgebases/`, 'agentKnowledgeBaseSummaries'),
    ]);
    const [groups, kbInfo] = await Promise.all([
      Promise.all(summaries.map((g) => ctx.api.request('GET', `${base}/agentversions/DRAFT/actiongroups/${enc(g.actionGroupId)}/`)
        .then((r) => (r && r.agentActionGroup) || g))),
      Promise.all(kbs.map((k) => ctx.api.request('GET', `/knowledgebases/${enc(k.knowledgeBaseId)}`)
        .then((r) => (r && r.knowledgeBase) || null, () => null))),
    ]);
    detail = {
      agent: (agentRes && agentRes.agent) || {},
      aliases,
      groups,
      kbs: kbs.map((k, i) => ({ ...k, name: kbInfo[i] && kbInfo[i].name })),
    };
  } catch (e) {
    if (seq !== S.loadSeq) return;
    ctx.toast(ctx.t('agents.loadFailed', { message: errMessage(e) }), 'error');
    closeAgent();
    ctx.navigate('#/agents', { replace: true });
    return;
  }
  if (seq !== S.loadSeq) return;
  const same = S.agentId === id;
  if (!same) stopRun();
  S.agentId = id;
  S.detail = detail;
  S.ui.placeholder.hidden = true;
  S.ui.detail.hidden = false;
  fillAliases();
  renderDetail();
  renderList();
  if (!(same && opts.keepSession)) newSession();
  S.ui.input.focus();
}

function fillAliases() {
  const { ui, ctx, detail } = S;
  const want = S.aliasId;
  ui.alias.replaceChildren();
  const draft = h('option', { value: DRAFT_ALIAS, text: ctx.t('agents.aliasOptionDraft') });
  draft.dataset.i18n = 'agents.aliasOptionDraft';
  ui.alias.append(draft);
  for (const a of detail.aliases) {
    if (a.agentAliasId === DRAFT_ALIAS) continue;
    const version = ((a.routingConfiguration || [])[0] || {}).agentVersion;
    const label = `${a.agentAliasName} (${a.agentAliasId})${version ? ` → v${version}` : ''}`;
    ui.alias.append(h('option', { value: a.agentAliasId, text: label }));
  }
  ui.alias.value = Array.from(ui.alias.options).some((o) => o.value === want) ? want : DRAFT_ALIAS;
  S.aliasId = ui.alias.value;
}

function renderDetail() {
  const { ui, ctx, detail } = S;
  const a = detail.agent;
  const prepare = tx(ctx, 'button', 'agents.prepare', { type: 'button', class: 'btn btn-sm', testid: 'agent-prepare' });
  prepare.addEventListener('click', () => prepareAgent(prepare));
  ui.head.replaceChildren(
    h('div', { class: 'row nowrap ag-head-row' },
      h('h1', { class: 'ag-name truncate', testid: 'agent-name', text: a.agentName || a.agentId }),
      statusBadge(a.agentStatus, 'agent-status'),
      h('span', { class: 'spacer' }),
      prepare),
    h('div', { class: 'row small muted ag-head-meta' },
      h('code', { testid: 'agent-id', text: a.agentId || '' }),
      h('span', { text: '·' }),
      h('code', { testid: 'agent-model', text: a.foundationModel || ctx.t('agents.noModel') }),
      h('span', { text: '·' }),
      h('span', { testid: 'agent-updated', text: ctx.t('agents.updated', { when: relTime(ctx, a.updatedAt) }) })),
  );
  if (a.description) ui.head.append(h('p', { class: 'small ag-description', text: a.description }));
  const instruction = a.instruction
    ? h('p', { class: 'pre ag-instruction', testid: 'agent-instruction', text: a.instruction })
    : tx(ctx, 'p', 'agents.noInstruction', { class: 'muted', testid: 'agent-instruction' });
  ui.info.replaceChildren(
    section(ctx, 'agents.instruction', 'agent-instruction-card', instruction),
    section(ctx, 'agents.actionGroups', 'agent-action-groups', ...renderGroups()),
    section(ctx, 'agents.knowledgeBases', 'agent-kbs', ...renderKbs()),
    section(ctx, 'agents.aliases', 'agent-aliases', renderAliases()),
  );
  const status = a.agentStatus;
  ui.warning.hidden = status === 'PREPARED' || S.aliasId !== DRAFT_ALIAS;
  if (!ui.warning.hidden) setTf(ctx, ui.warning, 'agents.notPrepared', { status: status || '?' });
}

function renderGroups() {
  const { ctx, detail } = S;
  if (!detail.groups.length) return [tx(ctx, 'p', 'agents.noActionGroups', { class: 'muted small' })];
  return detail.groups.map((g) => {
    const exec = g.actionGroupExecutor || {};
    let execLabel = null;
    if (exec.customControl) execLabel = tx(ctx, 'span', 'agents.returnControl', { class: 'badge warn', testid: 'agent-group-executor' });
    else if (exec.lambda) execLabel = h('span', { class: 'badge', testid: 'agent-group-executor', title: exec.lambda, text: `λ ${exec.lambda.split(':').pop()}` });
    const disabled = g.actionGroupState === 'DISABLED';
    const box = h('div', { class: `ag-group${disabled ? ' ag-disabled' : ''}`, testid: 'agent-action-group' },
      h('div', { class: 'row nowrap' },
        h('strong', { class: 'truncate', testid: 'agent-group-name', text: g.actionGroupName || g.actionGroupId }),
        execLabel,
        g.parentActionSignature ? h('span', { class: 'badge', text: g.parentActionSignature }) : null,
        disabled ? h('span', { class: 'badge', text: 'DISABLED' }) : null),
      g.description ? h('p', { class: 'muted small', text: g.description }) : null);
    const fns = (g.functionSchema && g.functionSchema.functions) || [];
    if (fns.length) box.append(h('ul', { class: 'ag-functions' }, fns.map((f) => renderFunction(f))));
    const api = g.apiSchema;
    if (api) box.append(renderApiSchema(api));
    return box;
  });
}

function renderFunction(f) {
  const { ctx } = S;
  const params = Object.entries(f.parameters || {});
  const sig = `${f.name}(${params.map(([n, p]) => `${n}: ${(p && p.type) || '?'}`).join(', ')})`;
  const li = h('li', { class: 'ag-function', testid: 'agent-function' },
    h('div', { class: 'row nowrap' },
      h('code', { class: 'ag-fn-sig', testid: 'agent-function-signature', text: sig }),
      f.requireConfirmation === 'ENABLED' ? tx(ctx, 'span', 'agents.requiresConfirmation', { class: 'badge warn' }) : null),
    f.description ? h('p', { class: 'muted small ag-fn-desc', text: f.description }) : null);
  if (params.length) {
    li.append(h('ul', { class: 'ag-fn-params' }, params.map(([name, p]) => h('li', { class: 'small', testid: 'agent-function-param' },
      h('code', { text: name }), ' ',
      h('span', { class: 'muted', text: (p && p.type) || '' }), ' ',
      tx(ctx, 'span', p && p.required ? 'agents.required' : 'agents.optional', { class: `badge ${p && p.required ? 'accent' : ''}`.trim() }),
      p && p.description ? h('span', { class: 'muted', text: ` — ${p.description}` }) : null))));
  }
  return li;
}

function renderApiSchema(api) {
  const { ctx } = S;
  const ops = [];
  let doc = null;
  try { doc = api.payload ? JSON.parse(api.payload) : null; } catch (_) { doc = null; }
  for (const [path, item] of Object.entries((doc && doc.paths) || {})) {
    for (const [verb, op] of Object.entries(item || {})) {
      if (!op || typeof op !== 'object') continue;
      const params = (op.parameters || []).map((p) => p.name).join(', ');
      ops.push(h('li', { class: 'ag-function', testid: 'agent-function' },
        h('code', { text: `${verb.toUpperCase()} ${path}${op.operationId ? ` (${op.operationId})` : ''}` }),
        params ? h('span', { class: 'muted small', text: ` ${params}` }) : null,
        op.description ? h('p', { class: 'muted small', text: op.description }) : null));
    }
  }
  const box = h('div', { class: 'ag-api' }, tx(ctx, 'span', 'agents.apiSchema', { class: 'badge' }));
  if (ops.length) box.append(h('ul', { class: 'ag-functions' }, ops));
  else if (api.payload) box.append(h('details', {}, h('summary', { class: 'small', text: 'payload' }), h('pre', { class: 'code', text: api.payload })));
  else if (api.s3) box.append(h('code', { class: 'small', text: `s3://${api.s3.s3BucketName}/${api.s3.s3ObjectKey}` }));
  return box;
}

function renderKbs() {
  const { ctx, detail } = S;
  if (!detail.kbs.length) return [tx(ctx, 'p', 'agents.noKnowledgeBases', { class: 'muted small' })];
  return detail.kbs.map((k) => h('div', { class: 'ag-kb', testid: 'agent-kb' },
    h('div', { class: 'row nowrap' },
      h('strong', { class: 'truncate', text: k.name || k.knowledgeBaseId }),
      h('code', { class: 'small muted', text: k.knowledgeBaseId }),
      k.knowledgeBaseState === 'DISABLED' ? h('span', { class: 'badge', text: 'DISABLED' }) : null),
    k.description ? h('p', { class: 'muted small', text: k.description }) : null));
}

function renderAliases() {
  const { ctx, detail } = S;
  const list = h('ul', { class: 'ag-aliases' });
  const draft = detail.aliases.find((a) => a.agentAliasId === DRAFT_ALIAS);
  list.append(h('li', { class: 'ag-alias', testid: 'agent-alias-item' },
    h('code', { text: DRAFT_ALIAS }), ' ',
    h('span', { class: 'muted small', text: draft ? draft.agentAliasName : 'AgentTestAlias' }), ' — ',
    tx(ctx, 'span', 'agents.draftAlias', { class: 'small' })));
  for (const a of detail.aliases) {
    if (a.agentAliasId === DRAFT_ALIAS) continue;
    const version = ((a.routingConfiguration || [])[0] || {}).agentVersion;
    list.append(h('li', { class: 'ag-alias', testid: 'agent-alias-item' },
      h('strong', { text: a.agentAliasName }), ' ',
      h('code', { class: 'small muted', text: a.agentAliasId }), ' ',
      version ? tf(ctx, 'span', 'agents.aliasVersion', { version }, { class: 'badge accent' }) : null,
      a.agentAliasStatus && a.agentAliasStatus !== 'PREPARED' ? statusBadge(a.agentAliasStatus) : null,
      a.description ? h('span', { class: 'muted small', text: ` — ${a.description}` }) : null));
  }
  return list;
}

async function prepareAgent(btn) {
  const { ctx } = S;
  const id = S.agentId;
  btn.disabled = true;
  try {
    await ctx.api.request('POST', `/agents/${enc(id)}/`);
    ctx.toast(ctx.t('agents.prepared'), 'ok');
    await refreshList();
    if (S.agentId === id) await openAgent(id, { keepSession: true });
  } catch (e) {
    ctx.toast(errMessage(e), 'error');
  } finally {
    btn.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------------
// the test conversation

function newSession() {
  stopRun();
  const { ui } = S;
  S.sessionId = S.ctx.api.newSessionId();
  S.turns = [];
  ui.session.textContent = S.sessionId.slice(0, 8);
  ui.session.dataset.sessionId = S.sessionId;
  ui.session.title = S.sessionId;
  ui.log.replaceChildren(ui.hint);
  if (S.detail) {
    const status = S.detail.agent.agentStatus;
    ui.warning.hidden = status === 'PREPARED' || S.aliasId !== DRAFT_ALIAS;
  }
}

function setBusy(busy) {
  const { ui } = S;
  S.busy = busy;
  ui.send.hidden = busy;
  ui.send.disabled = busy;
  ui.stop.hidden = !busy;
}

function stopRun() {
  if (S.abort) S.abort.abort();
}

function scrollToBottom() {
  S.ui.log.scrollTop = S.ui.log.scrollHeight;
}

// run fn (which adds to the log) and keep following the bottom if the reader was there before it
function follow(fn) {
  const box = S.ui.log;
  const near = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  fn();
  if (near) box.scrollTop = box.scrollHeight;
}

function newTurn(question) {
  const { ctx, ui } = S;
  if (ui.hint.parentNode) ui.hint.remove();
  const trace = new Trace(ctx, {
    kbName: (id) => ((S.detail && S.detail.kbs.find((k) => k.knowledgeBaseId === id)) || {}).name || null,
  });
  const text = h('span', { class: 'ag-answer-text', testid: 'agent-answer-text' });
  const working = h('span', { class: 'ag-working muted', testid: 'agent-working' },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ', tx(ctx, 'span', 'agents.working'));
  const answer = h('div', { class: 'msg assistant ag-answer', testid: 'agent-answer', 'data-streaming': 'false' }, text, working);
  const sources = h('div', { class: 'ag-sources', testid: 'agent-sources', hidden: true });
  const rc = h('div', { class: 'ag-rc-slot' });
  const el = h('article', { class: 'ag-turn', testid: 'agent-turn' },
    h('div', { class: 'msg user ag-question', testid: 'agent-question', text: question }),
    trace.el, rc, answer, sources);
  ui.log.append(el);
  const turn = { el, trace, answer, text, working, sources, rc, content: '', citations: [] };
  S.turns.push(turn);
  scrollToBottom();
  return turn;
}

async function send() {
  const { ui } = S;
  if (S.busy || !S.agentId) return;
  const question = ui.input.value.trim();
  if (!question) {
    ui.input.focus();
    return;
  }
  ui.input.value = '';
  const turn = newTurn(question);
  await run(turn, { inputText: question });
  focusNext(turn);
}

// after a run: the return-of-control form when one waits, else the composer
function focusNext(turn) {
  if (!turn.el.isConnected) return;
  const form = turn.rc.querySelector('form');
  const target = form ? form.querySelector('textarea, button') : S.ui.input;
  if (target) target.focus();
}

// one InvokeAgent call, drawn into `turn` (a question, or results sent back after a return of control)
async function run(turn, input) {
  const { ctx } = S;
  const agentId = S.agentId;
  const sessionId = S.sessionId;
  setBusy(true);
  const abort = new AbortController();
  S.abort = abort;
  turn.answer.hidden = false;
  turn.answer.dataset.streaming = 'true';
  turn.answer.append(turn.working);
  turn.trace.setRunning(true);
  let control = null;
  try {
    await ctx.api.invokeAgent(agentId, S.aliasId, sessionId, { ...input, enableTrace: true }, {
      signal: abort.signal,
      onChunk: (piece, chunk) => follow(() => {
        const offset = turn.content.length;
        turn.content += piece;
        const cites = (chunk && chunk.attribution && chunk.attribution.citations) || [];
        for (const c of cites) turn.citations.push({ c, offset });
        turn.working.remove();
        turn.text.textContent = turn.content;
      }),
      onTrace: (part) => follow(() => turn.trace.add(part)),
      onReturnControl: (rcEvent) => follow(() => {
        control = rcEvent;
        turn.trace.returnControl(rcEvent);
      }),
    });
    follow(() => {
      turn.answer.dataset.streaming = 'false';
      turn.working.remove();
      renderAnswer(turn);
      if (control) {
        if (!turn.content) turn.answer.hidden = true;
        showReturnControl(turn, control);
      }
    });
  } catch (e) {
    turn.answer.dataset.streaming = 'false';
    turn.working.remove();
    if (isAbort(e) || abort.signal.aborted) {
      turn.answer.append(tx(ctx, 'span', 'agents.stopped', { class: 'ag-stopped muted small', testid: 'agent-stopped' }));
    } else {
      turn.answer.classList.add('error');
      turn.answer.append(tf(ctx, 'span', 'agents.error', { message: errMessage(e) }, { class: 'ag-error', testid: 'agent-error' }));
      ctx.toast(errMessage(e), 'error');
    }
  } finally {
    turn.trace.setRunning(false);
    if (S.abort === abort) S.abort = null;
    setBusy(false);
  }
}

// the answer with citation markers [n] after each cited span, and the numbered sources under it
function renderAnswer(turn) {
  const { ctx } = S;
  const text = turn.content;
  const sources = [];          // [{key, ref}]
  const numberOf = (ref) => {
    const key = `${sourceOf(ref)}\u0000${(ref.content && ref.content.text) || ''}`;
    let i = sources.findIndex((s) => s.key === key);
    if (i < 0) { sources.push({ key, ref }); i = sources.length - 1; }
    return i + 1;
  };
  const marks = [];
  for (const { c, offset } of turn.citations) {
    const refs = c.retrievedReferences || [];
    if (!refs.length) continue;
    const part = (c.generatedResponsePart && c.generatedResponsePart.textResponsePart) || {};
    const end = part.span && Number.isFinite(part.span.end) ? offset + part.span.end + 1 : text.length;
    marks.push({ pos: Math.max(0, Math.min(text.length, end)), nums: [...new Set(refs.map(numberOf))] });
  }
  if (!marks.length) {
    turn.text.textContent = text;
    turn.sources.hidden = true;
    return;
  }
  marks.sort((a, b) => a.pos - b.pos);
  const frag = [];
  let at = 0;
  for (const m of marks) {
    if (m.pos > at) frag.push(document.createTextNode(text.slice(at, m.pos)));
    at = Math.max(at, m.pos);
    for (const n of m.nums) {
      const b = h('button', { type: 'button', class: 'ag-cite', testid: 'agent-cite', text: `[${n}]` });
      b.addEventListener('click', () => {
        const target = turn.sources.querySelector(`[data-source="${n}"]`);
        if (target) {
          target.scrollIntoView({ block: 'nearest' });
          target.classList.add('ag-flash');
          setTimeout(() => target.classList.remove('ag-flash'), 1200);
        }
      });
      frag.push(b);
    }
  }
  if (at < text.length) frag.push(document.createTextNode(text.slice(at)));
  turn.text.replaceChildren(...frag);
  const list = h('ol', { class: 'ag-source-list' });
  sources.forEach((s, i) => {
    const li = h('li', { class: 'ag-source', testid: 'agent-source' },
      h('span', { class: 'ag-source-num mono', text: `[${i + 1}]` }),
      h('div', { class: 'grow' },
        h('div', { class: 'mono small ag-source-uri', testid: 'agent-source-uri', text: sourceOf(s.ref) }),
        snippet(ctx, (s.ref.content && s.ref.content.text) || '', { class: 'ag-snippet small muted' })));
    li.dataset.source = String(i + 1);
    list.append(li);
  });
  turn.sources.replaceChildren(tx(ctx, 'div', 'agents.sources', { class: 'section-title' }), list);
  turn.sources.hidden = false;
}

// ---------------------------------------------------------------------------------------------------
// return of control: the form (return-control.js), then the run goes on with what the user sent back

function showReturnControl(turn, control) {
  const form = returnControlForm(S.ctx, control, {
    busy: () => S.busy,
    submit: async (results) => {
      turn.content = '';
      turn.citations = [];
      turn.text.textContent = '';
      await run(turn, {
        sessionState: { invocationId: control.invocationId, returnControlInvocationResults: results },
      });
      focusNext(turn);
    },
  });
  turn.rc.append(form);
  scrollToBottom();
}
