// haniwa playground — the Chat panel's sidebar: saved conversations (/haniwa/v1/conversations), each with
// rename, export (a JSON download) and delete (confirmed in place). The panel owns which conversation is
// open; the list asks it (currentId) and tells it when the open one was deleted (onDeleted).
//
//   conversationList(ctx, {currentId() → id | null, onDeleted(id)}) → {el, empty, refresh(), render()}
//     el / empty      the <ul> and the "no conversations yet" line, for the panel to place
//     refresh()       list again from the server, then render
//     render()        draw the list again (after a language switch, or when another one is opened); an item
//                     being renamed or confirming a delete is left as it is

import { errMessage, h, tx } from '../common/dom.js';
import { fmtDateTime, relTime } from '../common/format.js';

function fileSafe(name) {
  return (name || 'conversation').replace(/[\\/:*?"<>|\s]+/g, '_').slice(0, 60) || 'conversation';
}

export function conversationList(ctx, { currentId, onDeleted }) {
  const list = h('ul', { class: 'conv-list', testid: 'conv-list' });
  const empty = tx(ctx, 'p', 'chat.noConversations', { class: 'muted conv-empty', hidden: true });
  let items = [];

  async function refresh() {
    try {
      const res = await ctx.api.request('GET', '/haniwa/v1/conversations?limit=50');
      items = (res && res.data) || [];
    } catch (e) {
      ctx.toast(errMessage(e), 'error');
      return;
    }
    render();
  }

  function render() {
    // keep an item that is being renamed / confirming untouched
    const editing = list.querySelector('[data-editing="true"]');
    if (editing) return;
    list.replaceChildren();
    empty.hidden = items.length > 0;
    for (const c of items) {
      const li = h('li', { class: 'conv-item', testid: 'conv-item', 'data-id': c.id });
      if (c.id === currentId()) {
        li.classList.add('active');
        li.setAttribute('aria-current', 'true');
      }
      const title = h('span', { class: 'conv-title', testid: 'conv-title', text: c.title || ctx.t('chat.untitled') });
      const meta = h('span', { class: 'conv-meta muted' },
        h('span', { class: 'conv-model', text: c.model_id }), ' · ',
        h('span', { class: 'conv-time', text: relTime(ctx, c.updated || c.created), title: fmtDateTime(c.updated || c.created, ctx.lang()) }));
      const open = h('a', { class: 'conv-open', href: `#/chat/${encodeURIComponent(c.id)}` }, title, meta);
      const actions = h('div', { class: 'conv-actions' },
        iconButton('conv-rename', '✎', 'chat.rename', () => startRename(li, c)),
        iconButton('conv-export', '⤓', 'chat.export', () => exportConversation(c)),
        iconButton('conv-delete', '🗑', 'chat.delete', () => confirmDelete(li, c)));
      li.append(open, actions);
      list.append(li);
    }
  }

  function iconButton(testid, glyph, key, onclick) {
    const b = h('button', { type: 'button', class: 'icon-btn', testid }, glyph);
    b.dataset.i18nTitle = key;
    b.dataset.i18nAriaLabel = key;
    b.title = ctx.t(key);
    b.setAttribute('aria-label', ctx.t(key));
    b.addEventListener('click', (ev) => { ev.preventDefault(); ev.stopPropagation(); onclick(); });
    return b;
  }

  function startRename(li, c) {
    li.dataset.editing = 'true';
    const input = h('input', { type: 'text', class: 'conv-rename-input', testid: 'conv-rename-input', value: c.title || '' });
    input.setAttribute('aria-label', ctx.t('chat.renameLabel'));
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      delete li.dataset.editing;
      const title = input.value.trim();
      if (save && title && title !== c.title) {
        try {
          await ctx.api.request('PATCH', `/haniwa/v1/conversations/${encodeURIComponent(c.id)}`, { title });
        } catch (e) {
          ctx.toast(errMessage(e), 'error');
        }
      }
      await refresh();
    };
    input.addEventListener('keydown', (ev) => {
      if (ev.isComposing || ev.keyCode === 229) return;
      if (ev.key === 'Enter') { ev.preventDefault(); finish(true); }
      if (ev.key === 'Escape') { ev.preventDefault(); finish(false); }
    });
    input.addEventListener('blur', () => finish(true));
    li.replaceChildren(h('div', { class: 'conv-edit' }, input));
    input.focus();
    input.select();
  }

  function confirmDelete(li, c) {
    li.dataset.editing = 'true';
    const yes = tx(ctx, 'button', 'chat.delete', { type: 'button', class: 'btn danger small', testid: 'conv-delete-confirm' });
    const no = tx(ctx, 'button', 'chat.cancel', { type: 'button', class: 'btn small', testid: 'conv-delete-cancel' });
    no.addEventListener('click', () => { delete li.dataset.editing; render(); });
    yes.addEventListener('click', async () => {
      yes.disabled = true;
      try {
        await ctx.api.request('DELETE', `/haniwa/v1/conversations/${encodeURIComponent(c.id)}`);
        ctx.toast(ctx.t('chat.deleted'), 'ok');
        if (currentId() === c.id) onDeleted(c.id);
      } catch (e) {
        ctx.toast(errMessage(e), 'error');
      }
      delete li.dataset.editing;
      await refresh();
    });
    li.replaceChildren(h('div', { class: 'conv-confirm', role: 'alertdialog' },
      tx(ctx, 'span', 'chat.deleteConfirm', { class: 'conv-confirm-text' }),
      h('div', { class: 'conv-confirm-actions' }, yes, no)));
    no.focus();
  }

  async function exportConversation(c) {
    try {
      const data = await ctx.api.request('GET', `/haniwa/v1/conversations/${encodeURIComponent(c.id)}?download=1`);
      const blob = new Blob([JSON.stringify(data, null, 2) + '\n'], { type: 'application/json' });
      const name = `haniwa-${fileSafe(c.title)}-${c.id}.json`;
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      ctx.toast(ctx.t('chat.exported', { name }), 'ok');
    } catch (e) {
      ctx.toast(errMessage(e), 'error');
    }
  }

  return { el: list, empty, refresh, render };
}
