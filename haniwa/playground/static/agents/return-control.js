// haniwa playground — the Agents panel's return-of-control form (panel.js runs the agent).
//
// When InvokeAgent ends with a `returnControl` event ({invocationId, invocationInputs: [
// {functionInvocationInput | apiInvocationInput: {actionGroup, function | apiPath, parameters,
// actionInvocationType: RESULT | USER_CONFIRMATION | USER_CONFIRMATION_AND_RESULT}}]}), the caller runs
// the call (or confirms it) and sends back sessionState.returnControlInvocationResults with the same
// invocationId. returnControlForm() draws that: the requested call and its parameters, a result box
// (RESULT) or Confirm / Deny (confirmation), and on submit replaces itself with what was sent and calls
// submit(results) with the Bedrock-shaped results.

import './strings.js';
import { h, tx } from '../common/dom.js';
import { tf, paramList } from './trace.js';

// one entry of returnControlInvocationResults for a call, given the decision and the typed result
function resultFor(c, decision) {
  const r = c.fn
    ? { actionGroup: c.fn.actionGroup, function: c.fn.function }
    : { actionGroup: c.api.actionGroup, apiPath: c.api.apiPath, httpMethod: c.api.httpMethod };
  if (c.wantsConfirm) r.confirmationState = decision === 'DENY' ? 'DENY' : 'CONFIRM';
  if (c.wantsResult && decision !== 'DENY') {
    const body = c.result.value;
    r.responseBody = c.fn ? { TEXT: { body } } : { 'application/json': { body } };
    if (c.failed.checked) r.responseState = 'FAILURE';
  }
  return c.fn ? { functionResult: r } : { apiResult: r };
}

function sentNote(ctx, calls, decision) {
  const attrs = { class: 'ag-rc-sent small', testid: 'rc-sent' };
  if (decision === 'DENY') return tx(ctx, 'p', 'agents.rc.sentDeny', attrs);
  const bodies = calls.filter((c) => c.wantsResult).map((c) => c.result.value).join(' · ');
  return bodies ? tf(ctx, 'p', 'agents.rc.sentResult', { body: bodies }, attrs) : tx(ctx, 'p', 'agents.rc.sentConfirm', attrs);
}

// the form for one returnControl event; opts: {busy() → bool, submit(results) → Promise}
export function returnControlForm(ctx, control, opts) {
  const calls = (control.invocationInputs || []).map((inp) => {
    const fn = inp.functionInvocationInput;
    const api = inp.apiInvocationInput;
    const call = fn || api || {};
    const kind = call.actionInvocationType || 'RESULT';
    return { fn, api, call, wantsResult: kind.includes('RESULT'), wantsConfirm: kind.includes('CONFIRMATION') };
  });
  const confirm = calls.some((c) => c.wantsConfirm);
  const form = h('form', { class: 'card ag-rc', testid: 'rc-form' },
    tx(ctx, 'div', confirm ? 'agents.rc.confirmTitle' : 'agents.rc.title', { class: 'ag-rc-title' }));
  for (const c of calls) {
    const target = c.fn ? c.fn.function : `${(c.api.httpMethod || '').toUpperCase()} ${c.api.apiPath || ''}`;
    const box = h('div', { class: 'ag-rc-call', testid: 'rc-call' },
      h('code', { class: 'ag-call', testid: 'rc-function', text: `${c.call.actionGroup || ''} › ${target}` }),
      paramList(ctx, c.call.parameters, 'rc-params', 'rc-param'));
    if (c.wantsResult) {
      c.result = h('textarea', { rows: '2', testid: 'rc-result', required: true });
      c.result.dataset.i18nPlaceholder = 'agents.rc.resultPlaceholder';
      c.result.placeholder = ctx.t('agents.rc.resultPlaceholder');
      c.result.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {   // Ctrl/⌘+Enter sends (or confirms)
          ev.preventDefault();
          form.requestSubmit(form.querySelector('button[value="CONFIRM"], button[value="RESULT"]'));
        }
      });
      c.failed = h('input', { type: 'checkbox', testid: 'rc-failed' });
      box.append(h('label', { class: 'field' }, tx(ctx, 'span', 'agents.rc.result'), c.result),
        h('label', { class: 'check small' }, c.failed, tx(ctx, 'span', 'agents.rc.failed')));
    }
    form.append(box);
  }
  const buttons = confirm
    ? [tx(ctx, 'button', 'agents.rc.deny', { type: 'submit', class: 'btn btn-danger', testid: 'rc-deny', value: 'DENY', formnovalidate: true }),
      tx(ctx, 'button', 'agents.rc.confirm', { type: 'submit', class: 'btn btn-primary', testid: 'rc-confirm', value: 'CONFIRM' })]
    : [tx(ctx, 'button', 'agents.rc.submit', { type: 'submit', class: 'btn btn-primary', testid: 'rc-submit', value: 'RESULT' })];
  form.append(h('div', { class: 'row end' }, buttons));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (opts.busy()) return;   // another question is running; the form stays
    const decision = (ev.submitter && ev.submitter.value) || (confirm ? 'CONFIRM' : 'RESULT');
    const results = calls.map((c) => resultFor(c, decision));
    form.replaceWith(h('div', { class: 'ag-rc ag-rc-done card tight' }, sentNote(ctx, calls, decision)));
    opts.submit(results);
  });
  return form;
}
