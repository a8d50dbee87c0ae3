// haniwa playground — the Agents panel's trace timeline and its own helpers (panel.js draws the rest).
//
// A Trace turns one turn's InvokeAgent `trace` events (Bedrock TracePart objects:
// {agentId, agentAliasId, sessionId, trace: {orchestrationTrace | preProcessingTrace |
// postProcessingTrace | failureTrace | guardrailTrace | …}}) into a vertical timeline of steps, one per
// traceId: rationale, knowledge-base lookups with their references, action-group calls with their
// parameters and results, reprompts, failures and the final response. Model invocations are folded
// (<details>) with their token usage. Everything the model or a user wrote is set with textContent.
//
// Exports: tf(ctx, tag, key, vars, attrs), setTf(ctx, el, key, vars), retranslate(ctx, root),
// prettyText(text), sourceOf(reference), paramList(ctx, params, testid, itemTestid),
// snippet(ctx, text, attrs), class Trace. (h, tx and the other DOM helpers are in common/dom.js.)

import './strings.js';
import { h, tx } from '../common/dom.js';
import { num } from '../common/format.js';

const SNIPPET_CHARS = 280;

// ---------------------------------------------------------------------------------------------------
// translated text with {vars}, parameters, snippets (h, tx: common/dom.js)

// an element whose text is the translation of `key` with {vars}, re-translated by retranslate() (the
// shell's translateDom knows no vars; tx() in common/dom.js is the plain form)
export function tf(ctx, tag, key, vars, attrs) {
  const el = h(tag, attrs);
  setTf(ctx, el, key, vars);
  return el;
}

export function setTf(ctx, el, key, vars) {
  el.dataset.agKey = key;
  el.dataset.agVars = JSON.stringify(vars || {});
  el.textContent = ctx.t(key, vars);
}

export function retranslate(ctx, root) {
  root.querySelectorAll('[data-ag-key]').forEach((el) => {
    let vars = {};
    try { vars = JSON.parse(el.dataset.agVars || '{}'); } catch (_) { /* keep {} */ }
    el.textContent = ctx.t(el.dataset.agKey, vars);
  });
}

// longer JSON text pretty-printed (non-ASCII kept), anything else as it is
export function prettyText(text) {
  const s = text === undefined || text === null ? '' : String(text);
  const trimmed = s.trim();
  if (trimmed.length <= 100 || !(trimmed.startsWith('{') || trimmed.startsWith('['))) return s;
  try { return JSON.stringify(JSON.parse(trimmed), null, 2); } catch (_) { return s; }
}

// where a RetrievedReference came from: an S3 URI, a web URL, a document id, …
export function sourceOf(ref) {
  const loc = (ref && ref.location) || {};
  const meta = (ref && ref.metadata) || {};
  return (loc.s3Location && loc.s3Location.uri)
    || (loc.webLocation && loc.webLocation.url)
    || (loc.customDocumentLocation && loc.customDocumentLocation.id)
    || (loc.confluenceLocation && loc.confluenceLocation.url)
    || (loc.sharePointLocation && loc.sharePointLocation.url)
    || (loc.salesforceLocation && loc.salesforceLocation.url)
    || meta['x-amz-bedrock-kb-source-uri']
    || loc.type
    || '?';
}

function paramText(v) {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// "name=value" chips for Bedrock parameter lists [{name, type, value}]
export function paramList(ctx, params, testid, itemTestid) {
  const list = h('ul', { class: 'ag-params', testid });
  for (const p of params || []) {
    list.append(h('li', { class: 'ag-param', testid: itemTestid, title: p.type || '' },
      h('span', { class: 'ag-param-name', text: p.name }), '=',
      h('span', { class: 'ag-param-value', text: paramText(p.value) })));
  }
  if (!list.children.length) list.append(tx(ctx, 'li', 'agents.trace.noParams', { class: 'muted small' }));
  return list;
}

// a long text cut to SNIPPET_CHARS with a Show all / Show less toggle
export function snippet(ctx, text, attrs) {
  const full = String(text || '');
  const el = h('p', { class: 'ag-snippet', ...(attrs || {}) });
  if (full.length <= SNIPPET_CHARS) {
    el.textContent = full;
    return el;
  }
  const body = h('span', { text: `${full.slice(0, SNIPPET_CHARS)}…` });
  const toggle = tx(ctx, 'button', 'agents.trace.showMore', { type: 'button', class: 'ag-link' });
  let open = false;
  toggle.addEventListener('click', () => {
    open = !open;
    body.textContent = open ? full : `${full.slice(0, SNIPPET_CHARS)}…`;
    toggle.dataset.i18n = open ? 'agents.trace.showLess' : 'agents.trace.showMore';
    toggle.textContent = ctx.t(toggle.dataset.i18n);
  });
  el.append(body, ' ', toggle);
  return el;
}

// ---------------------------------------------------------------------------------------------------
// the timeline of one turn

export class Trace {
  constructor(ctx, opts = {}) {
    this.ctx = ctx;
    this.kbName = opts.kbName || (() => null);
    this.steps = new Map();   // traceId → step
    this.last = null;
    this.orchCount = 0;
    this.usage = { input: 0, output: 0, seen: false };
    this.count = tf(ctx, 'span', 'agents.trace.steps', { n: 0 }, { class: 'ag-trace-count muted' });
    this.tokens = h('span', { class: 'ag-trace-tokens muted mono', testid: 'trace-tokens', hidden: true });
    this.spinner = h('span', { class: 'spinner', hidden: true, 'aria-hidden': 'true' });
    this.timeline = h('ol', { class: 'ag-timeline', testid: 'trace-steps' });
    this.el = h('details', { class: 'ag-trace', testid: 'trace', open: true },
      h('summary', { class: 'ag-trace-head', testid: 'trace-summary' },
        tx(ctx, 'span', 'agents.trace.title', { class: 'ag-trace-title' }), this.count, this.tokens, this.spinner),
      this.timeline);
    this.el.hidden = true;   // until the first event (a run without trace shows none)
  }

  setRunning(on) {
    this.spinner.hidden = !on;
    this.el.dataset.running = on ? 'true' : 'false';
  }

  add(part) {
    const tr = (part && part.trace) || {};
    if (tr.orchestrationTrace) this._orchestration(tr.orchestrationTrace);
    else if (tr.failureTrace) this._failure(tr.failureTrace);
    else if (tr.preProcessingTrace) this._phase('agents.trace.pre', 'pre', tr.preProcessingTrace);
    else if (tr.postProcessingTrace) this._phase('agents.trace.post', 'post', tr.postProcessingTrace);
    else if (tr.guardrailTrace) this._guardrail(tr.guardrailTrace);
    else this._generic(tr);
    this._refresh();
  }

  // a returnControl event: what the agent asks the caller to run, as the last step's closing item
  returnControl(rc) {
    const step = this.last || this._step(`rc-${rc.invocationId || ''}`, 'agents.trace.returnControl', 'rc');
    const item = this._item(step, 'rc', 'trace-return-control', 'agents.trace.returnControl');
    for (const inp of (rc && rc.invocationInputs) || []) {
      const call = inp.functionInvocationInput || inp.apiInvocationInput || {};
      const target = call.function || `${(call.httpMethod || '').toUpperCase()} ${call.apiPath || ''}`.trim();
      item.append(h('div', { class: 'ag-call-line' },
        h('code', { class: 'ag-call', text: `${call.actionGroup || ''} › ${target}` }),
        call.actionInvocationType ? h('span', { class: 'badge warn', text: call.actionInvocationType }) : null),
      paramList(this.ctx, call.parameters, 'trace-rc-params', 'trace-rc-param'));
    }
    this._tag(step, 'agents.trace.tagRc', 'warn');
    this.el.hidden = false;
    this._refresh();
  }

  // ---- steps ---------------------------------------------------------------------------------------

  _step(traceId, titleKey, kind, vars) {
    const key = traceId || `anon-${this.steps.size}`;
    let step = this.steps.get(key);
    if (step) return step;
    const title = vars ? tf(this.ctx, 'span', titleKey, vars, { class: 'ag-step-title' })
      : tx(this.ctx, 'span', titleKey, { class: 'ag-step-title' });
    const tags = h('span', { class: 'ag-step-tags' });
    const body = h('div', { class: 'ag-step-body' });
    const details = h('details', { class: 'ag-step-box', open: true },
      h('summary', { class: 'ag-step-head' }, title, tags), body);
    const li = h('li', { class: `ag-step ag-step-${kind}`, testid: 'trace-step' }, details);
    li.dataset.traceId = key;
    this.timeline.append(li);
    step = { li, body, tags, model: null, kb: null, action: null, tagSet: new Set() };
    this.steps.set(key, step);
    this.last = step;
    this.el.hidden = false;
    return step;
  }

  _orchStep(traceId) {
    if (traceId && this.steps.has(traceId)) return this.steps.get(traceId);
    this.orchCount += 1;
    return this._step(traceId, 'agents.trace.step', 'orch', { n: this.orchCount });
  }

  _item(step, kind, testid, labelKey) {
    const el = h('div', { class: `ag-item ag-item-${kind}`, testid },
      tx(this.ctx, 'div', labelKey, { class: 'ag-item-label' }));
    step.body.append(el);
    return el;
  }

  _tag(step, key, kind, literal) {
    const id = literal ? `lit:${literal}` : key;
    if (step.tagSet.has(id)) return;
    step.tagSet.add(id);
    const cls = `badge ${kind || ''}`.trim();
    step.tags.append(literal ? h('span', { class: `${cls} mono`, text: literal }) : tx(this.ctx, 'span', key, { class: cls }));
    if (kind === 'error') step.li.classList.add('ag-step-error');
    if (kind === 'ok') step.li.classList.add('ag-step-final');
  }

  _refresh() {
    const n = this.steps.size;
    if (n === 1) setTf(this.ctx, this.count, 'agents.trace.oneStep', {});
    else setTf(this.ctx, this.count, 'agents.trace.steps', { n });
    if (this.usage.seen) {
      this.tokens.hidden = false;
      setTf(this.ctx, this.tokens, 'agents.trace.tokens', { input: this.usage.input, output: this.usage.output });
      this.tokens.dataset.inputTokens = String(this.usage.input);
      this.tokens.dataset.outputTokens = String(this.usage.output);
    }
  }

  // ---- orchestration -------------------------------------------------------------------------------

  _orchestration(o) {
    const [member, value] = Object.entries(o)[0] || [];
    if (!member) return;
    const v = value || {};
    const step = this._orchStep(v.traceId);
    switch (member) {
      case 'modelInvocationInput': this._modelInput(step, v); break;
      case 'modelInvocationOutput': this._modelOutput(step, v); break;
      case 'rationale': {
        const item = this._item(step, 'rationale', 'trace-rationale', 'agents.trace.rationale');
        item.append(h('p', { class: 'ag-rationale-text', text: v.text || '' }));
        break;
      }
      case 'invocationInput': this._invocation(step, v); break;
      case 'observation': this._observation(step, v); break;
      default: this._raw(step, member, v);
    }
  }

  _invocation(step, v) {
    const kind = v.invocationType;
    if (kind === 'KNOWLEDGE_BASE' || v.knowledgeBaseLookupInput) {
      const kb = v.knowledgeBaseLookupInput || {};
      const item = this._item(step, 'kb', 'trace-kb', 'agents.trace.kb');
      item.append(
        h('div', { class: 'ag-kb-id small muted', testid: 'trace-kb-id' },
          this.kbName(kb.knowledgeBaseId) ? h('strong', { text: this.kbName(kb.knowledgeBaseId) }) : null, ' ',
          h('code', { text: kb.knowledgeBaseId || '' })),
        h('div', { class: 'ag-query-row' }, tx(this.ctx, 'span', 'agents.trace.query', { class: 'muted small' }),
          h('q', { class: 'ag-query', testid: 'trace-kb-query', text: kb.text || '' })));
      step.kb = item;
      this._tag(step, 'agents.trace.tagKb', 'accent');
    } else if (kind === 'ACTION_GROUP' || v.actionGroupInvocationInput) {
      const a = v.actionGroupInvocationInput || {};
      const target = a.function || `${(a.verb || '').toUpperCase()} ${a.apiPath || ''}`.trim();
      const item = this._item(step, 'action', 'trace-action', 'agents.trace.action');
      item.append(h('div', { class: 'ag-call-line' },
        h('code', { class: 'ag-call', testid: 'trace-action-name' },
          h('span', { class: 'ag-call-group', testid: 'trace-action-group', text: a.actionGroupName || '' }),
          ' › ',
          h('span', { class: 'ag-call-fn', testid: 'trace-action-function', text: target })),
        a.executionType ? h('span', { class: 'badge', text: a.executionType }) : null));
      const params = [...(a.parameters || [])];
      const body = a.requestBody && a.requestBody.content;
      if (body) for (const props of Object.values(body)) params.push(...(Array.isArray(props) ? props : (props && props.properties) || []));
      item.append(paramList(this.ctx, params, 'trace-action-params', 'trace-param'));
      step.action = item;
      this._tag(step, null, 'accent', target);
    } else {
      this._raw(step, kind || 'invocationInput', v);
    }
  }

  _observation(step, v) {
    const type = v.type;
    if (type === 'KNOWLEDGE_BASE' || v.knowledgeBaseLookupOutput) {
      const item = step.kb || this._item(step, 'kb', 'trace-kb', 'agents.trace.kb');
      step.kb = null;
      const refs = (v.knowledgeBaseLookupOutput && v.knowledgeBaseLookupOutput.retrievedReferences) || [];
      if (!refs.length) {
        item.append(tx(this.ctx, 'p', 'agents.trace.noRefs', { class: 'muted small', testid: 'trace-kb-empty' }));
        return;
      }
      const list = h('ol', { class: 'ag-refs', testid: 'trace-kb-refs' });
      for (const ref of refs) {
        list.append(h('li', { class: 'ag-ref', testid: 'trace-kb-ref' },
          h('div', { class: 'ag-ref-source mono small', testid: 'trace-kb-source', text: sourceOf(ref) }),
          snippet(this.ctx, (ref.content && ref.content.text) || '', { testid: 'trace-kb-snippet' })));
      }
      item.append(list);
    } else if (type === 'ACTION_GROUP' || v.actionGroupInvocationOutput) {
      const item = step.action || this._item(step, 'action', 'trace-action', 'agents.trace.actionResult');
      step.action = null;
      const text = (v.actionGroupInvocationOutput && v.actionGroupInvocationOutput.text) || '';
      item.append(h('div', { class: 'ag-observation', testid: 'trace-observation' },
        tx(this.ctx, 'div', 'agents.trace.result', { class: 'ag-sub-label' }),
        h('pre', { class: 'code ag-result', text: prettyText(text) })));
    } else if (type === 'REPROMPT' || v.repromptResponse) {
      const r = v.repromptResponse || {};
      const item = this._item(step, 'reprompt', 'trace-reprompt', 'agents.trace.reprompt');
      item.append(h('pre', { class: 'code ag-reprompt-text', text: r.text || '' }));
      if (r.source) item.append(h('span', { class: 'badge', text: r.source }));
      this._tag(step, 'agents.trace.tagReprompt', 'warn');
    } else if (type === 'FINISH' || v.finalResponse) {
      const item = this._item(step, 'final', 'trace-final', 'agents.trace.final');
      item.append(h('p', { class: 'ag-final-text', text: (v.finalResponse && v.finalResponse.text) || '' }));
      this._tag(step, 'agents.trace.tagFinal', 'ok');
    } else {
      this._raw(step, type || 'observation', v);
    }
  }

  // ---- model invocations ---------------------------------------------------------------------------

  _modelBlock(step) {
    if (step.model) return step.model;
    const meta = h('span', { class: 'ag-model-meta muted small mono' });
    const usage = h('span', { class: 'ag-model-usage mono small', testid: 'trace-usage', hidden: true });
    const body = h('div', { class: 'ag-model-body' });
    const det = h('details', { class: 'ag-model', testid: 'trace-model' },
      h('summary', { class: 'ag-model-head' }, tx(this.ctx, 'span', 'agents.trace.model'), meta, usage), body);
    step.body.append(det);
    step.model = { det, meta, usage, body };
    return step.model;
  }

  _modelInput(step, v) {
    const m = this._modelBlock(step);
    m.meta.textContent = [v.type, v.foundationModel].filter(Boolean).join(' · ');
    const section = h('div', { class: 'ag-model-section', testid: 'trace-model-input' },
      tx(this.ctx, 'div', 'agents.trace.modelInput', { class: 'ag-sub-label' }));
    let parsed = null;
    try { parsed = JSON.parse(v.text || ''); } catch (_) { parsed = null; }
    if (parsed && typeof parsed === 'object' && (parsed.system !== undefined || Array.isArray(parsed.messages))) {
      if (parsed.system) {
        section.append(tx(this.ctx, 'div', 'agents.trace.system', { class: 'muted small' }),
          h('pre', { class: 'code ag-model-text', text: String(parsed.system) }));
      }
      if (Array.isArray(parsed.messages)) {
        section.append(tx(this.ctx, 'div', 'agents.trace.messages', { class: 'muted small' }));
        const list = h('ol', { class: 'ag-model-messages' });
        for (const msg of parsed.messages) {
          const content = typeof msg.content === 'string' ? msg.content : JSON.stringify(msg.content, null, 2);
          list.append(h('li', { class: 'ag-model-message' },
            h('span', { class: 'badge', text: msg.role || '?' }),
            h('pre', { class: 'code ag-model-text', text: content })));
        }
        section.append(list);
      }
    } else {
      section.append(h('pre', { class: 'code ag-model-text', text: prettyText(v.text || '') }));
    }
    const cfg = v.inferenceConfiguration;
    if (cfg && Object.keys(cfg).length) {
      section.append(h('div', { class: 'muted small mono', text: Object.entries(cfg).map(([k, x]) => `${k}=${paramText(x)}`).join(' · ') }));
    }
    m.body.append(section);
  }

  _modelOutput(step, v) {
    const m = this._modelBlock(step);
    const section = h('div', { class: 'ag-model-section', testid: 'trace-model-output' },
      tx(this.ctx, 'div', 'agents.trace.modelOutput', { class: 'ag-sub-label' }));
    const raw = v.rawResponse && v.rawResponse.content;
    if (raw !== undefined && raw !== null) section.append(h('pre', { class: 'code ag-model-text', text: prettyText(raw) }));
    const parsed = v.parsedResponse;
    if (parsed) section.append(h('pre', { class: 'code ag-model-text', text: JSON.stringify(parsed, null, 2) }));
    m.body.append(section);
    const meta = v.metadata || {};
    const u = meta.usage || {};
    const input = num(u.inputTokens);
    const output = num(u.outputTokens);
    if (input !== null || output !== null) {
      setTf(this.ctx, m.usage, 'agents.trace.usage', { input: input ?? 0, output: output ?? 0 });
      m.usage.dataset.inputTokens = String(input ?? 0);
      m.usage.dataset.outputTokens = String(output ?? 0);
      m.usage.hidden = false;
      this.usage.input += input ?? 0;
      this.usage.output += output ?? 0;
      this.usage.seen = true;
    }
    const ms = num(meta.totalTimeMs);
    if (ms !== null) section.append(tf(this.ctx, 'div', 'agents.trace.timeMs', { ms }, { class: 'muted small mono' }));
  }

  // ---- other trace kinds ---------------------------------------------------------------------------

  _failure(f) {
    const step = (f.traceId && this.steps.get(f.traceId)) || this._orchStep(f.traceId);
    const item = this._item(step, 'failure', 'trace-failure', 'agents.trace.failure');
    item.append(h('p', { class: 'ag-failure-text', text: f.failureReason || '' }));
    this._tag(step, 'agents.trace.tagFailure', 'error');
  }

  _phase(titleKey, kind, p) {
    const [member, value] = Object.entries(p)[0] || [];
    if (!member) return;
    const v = value || {};
    const step = this._step(v.traceId || `${kind}-${this.steps.size}`, titleKey, kind);
    if (member === 'modelInvocationInput') this._modelInput(step, v);
    else if (member === 'modelInvocationOutput') {
      this._modelOutput(step, v);
      const parsed = v.parsedResponse || {};
      if (parsed.rationale) {
        const item = this._item(step, 'rationale', 'trace-rationale', 'agents.trace.rationale');
        item.append(h('p', { class: 'ag-rationale-text', text: parsed.rationale }));
      }
    } else this._raw(step, member, v);
  }

  _guardrail(g) {
    const step = this._step(g.traceId || `guardrail-${this.steps.size}`, 'agents.trace.guardrail', 'guardrail');
    const item = this._item(step, 'guardrail', 'trace-guardrail', 'agents.trace.guardrail');
    if (g.action) item.append(h('span', { class: `badge ${g.action === 'NONE' ? 'ok' : 'warn'}`, text: g.action }));
    item.append(h('pre', { class: 'code ag-model-text', text: JSON.stringify(g, null, 2) }));
  }

  _generic(tr) {
    const [member, value] = Object.entries(tr)[0] || ['trace', tr];
    const step = this._step((value && value.traceId) || `other-${this.steps.size}`, 'agents.trace.other', 'other');
    this._raw(step, member, value);
  }

  _raw(step, label, v) {
    const det = h('details', { class: 'ag-item ag-item-raw', testid: 'trace-raw' },
      h('summary', { class: 'mono small', text: label }),
      h('pre', { class: 'code ag-model-text', text: JSON.stringify(v, null, 2) }));
    step.body.append(det);
  }
}
