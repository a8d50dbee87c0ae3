// haniwa playground — the shell: top bar, tabs, hash routing, lazy panels, toast, language, API key.
//
// Panels are ES modules (<name>/panel.js) imported on first use; each default-exports definePanel({...})
// from common/panel.js, which mountPanel() mounts once (stylesheets first); show(el, ctx, args) runs every
// time its route is shown. ctx:
//   { api, t, lang, setLang, onLangChange, toast(message, kind='info'|'error'|'ok'), navigate(hash, {replace}),
//     register }

import * as api from './common/api.js';
import { register, t, lang, setLang, onLangChange, translateDom } from './common/i18n.js';
import { h } from './common/dom.js';
import { isPanel, mountPanel } from './common/panel.js';

register({
  en: {
    'shell.tab.chat': 'Chat',
    'shell.tab.compare': 'Compare',
    'shell.tab.kb': 'Knowledge bases',
    'shell.tab.agents': 'Agents',
    'shell.tab.usage': 'Usage',
    'shell.tab.batch': 'Batch',
    'shell.tab.guardrails': 'Guardrails',
    'shell.tab.evaluation': 'Evaluation',
    'shell.tab.customization': 'Customization',
    'shell.tabs': 'Playground sections',
    'shell.langToggle': '日本語',
    'shell.langToggleTitle': 'Switch language',
    'shell.apiKey': 'API key',
    'shell.apiKeySet': 'API key ✓',
    'shell.apiKeyTitle': 'API key',
    'shell.apiKeyHelp': 'Used as "Authorization: Bearer …" for every request. Stored only in this browser (localStorage). Leave empty when the server runs without authentication.',
    'shell.apiKeyLabel': 'Key',
    'shell.apiKeyShow': 'Show',
    'shell.save': 'Save',
    'shell.clear': 'Clear',
    'shell.cancel': 'Cancel',
    'shell.close': 'Close',
    'shell.apiKeySaved': 'API key saved.',
    'shell.apiKeyCleared': 'API key cleared.',
    'shell.loading': 'Loading…',
    'shell.panelFailed': 'This panel could not be loaded.',
    'shell.panelFailedHint': 'Reload the page to try again. Details: {detail}',
    'shell.reload': 'Reload',
    'shell.shortcuts': 'Alt+1…9 switch tabs · / focuses the input · Ctrl/⌘+Enter sends',
  },
  ja: {
    'shell.tab.chat': 'チャット',
    'shell.tab.compare': '比較',
    'shell.tab.kb': 'ナレッジベース',
    'shell.tab.agents': 'エージェント',
    'shell.tab.usage': '使用状況',
    'shell.tab.batch': 'バッチ',
    'shell.tab.guardrails': 'ガードレール',
    'shell.tab.evaluation': '評価',
    'shell.tab.customization': 'カスタマイズ',
    'shell.tabs': 'プレイグラウンドのセクション',
    'shell.langToggle': 'English',
    'shell.langToggleTitle': '言語を切り替えます',
    'shell.apiKey': 'API キー',
    'shell.apiKeySet': 'API キー ✓',
    'shell.apiKeyTitle': 'API キー',
    'shell.apiKeyHelp': 'すべてのリクエストに「Authorization: Bearer …」として付けます。このブラウザー (localStorage) にのみ保存されます。サーバーが認証なしで動いている場合は空のままにしてください。',
    'shell.apiKeyLabel': 'キー',
    'shell.apiKeyShow': '表示',
    'shell.save': '保存',
    'shell.clear': 'クリア',
    'shell.cancel': 'キャンセル',
    'shell.close': '閉じる',
    'shell.apiKeySaved': 'API キーを保存しました。',
    'shell.apiKeyCleared': 'API キーを削除しました。',
    'shell.loading': '読み込み中…',
    'shell.panelFailed': 'このパネルを読み込めませんでした。',
    'shell.panelFailedHint': 'ページを再読み込みしてもう一度お試しください。詳細: {detail}',
    'shell.reload': '再読み込み',
    'shell.shortcuts': 'Alt+1…9 でタブ切り替え · / で入力欄へ移動 · Ctrl/⌘+Enter で送信',
  },
});

const PANELS = [
  { name: 'chat', module: './chat/panel.js' },
  { name: 'compare', module: './compare/panel.js' },
  { name: 'kb', module: './kb/panel.js' },
  { name: 'agents', module: './agents/panel.js' },
  { name: 'usage', module: './usage/panel.js' },
  { name: 'batch', module: './batch/panel.js' },
  { name: 'guardrails', module: './guardrails/panel.js' },
  { name: 'evaluation', module: './evaluation/panel.js' },
  { name: 'customization', module: './customization/panel.js' },
];
const DEFAULT_ROUTE = '#/chat';

const $ = (sel, root = document) => root.querySelector(sel);

// ---- toast --------------------------------------------------------------------------------------

let toastTimer = null;

function toast(message, kind = 'info') {
  const el = $('#toast');
  if (!el) return;
  el.textContent = String(message === undefined || message === null ? '' : message);
  el.className = `toast toast-${kind === 'error' || kind === 'ok' ? kind : 'info'}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  el.hidden = false;
  el.dataset.kind = kind;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 4000);
}

// ---- routing ------------------------------------------------------------------------------------

function parseHash(hash) {
  const raw = (hash || '').replace(/^#\/?/, '');
  const parts = raw.split('/').filter((s) => s !== '').map((s) => {
    try { return decodeURIComponent(s); } catch (_) { return s; }
  });
  return { name: parts[0] || '', args: parts.slice(1) };
}

function navigate(hash, opts = {}) {
  let target = String(hash || DEFAULT_ROUTE);
  if (!target.startsWith('#')) target = `#${target.startsWith('/') ? '' : '/'}${target}`;
  if (opts.replace) {
    history.replaceState(null, '', target);
    route();
  } else if (location.hash === target) {
    route();
  } else {
    location.hash = target; // fires hashchange → route()
  }
}

const ctx = {
  api,
  t,
  lang,
  setLang,
  onLangChange,
  register,
  toast,
  navigate,
};

const state = new Map(); // name → {el, mounted: Promise|null, failed: bool}
let currentName = null;

function panelState(name) {
  let s = state.get(name);
  if (!s) {
    const el = h('section', { class: 'panel', id: `panel-${name}`, role: 'tabpanel', 'aria-labelledby': `tab-${name}` });
    el.hidden = true;
    $('#panels').append(el);
    s = { el, mounted: null };
    state.set(name, s);
  }
  return s;
}

function showFailure(el, err) {
  el.replaceChildren(
    h('div', { class: 'panel-error card', 'data-testid': 'panel-error' },
      h('h2', { 'data-i18n': 'shell.panelFailed' }, t('shell.panelFailed')),
      h('p', { class: 'muted' }, t('shell.panelFailedHint', { detail: (err && err.message) || String(err) })),
      h('button', { class: 'btn', type: 'button', onclick: () => location.reload() }, t('shell.reload'))),
  );
}

function ensureMounted(name) {
  const spec = PANELS.find((p) => p.name === name);
  const s = panelState(name);
  if (!s.mounted) {
    s.el.replaceChildren(h('div', { class: 'panel-loading muted' }, t('shell.loading')));
    s.mounted = (async () => {
      const { default: panel } = await import(spec.module);
      if (!isPanel(panel)) throw new Error(`${spec.module} does not export definePanel({...}) as its default`);
      s.el.replaceChildren();
      await mountPanel(panel, s.el, ctx);
      translateDom(s.el);
      return panel;
    })();
    s.mounted.catch((err) => {
      console.warn(`haniwa: panel "${name}" failed to load`, err);
      showFailure(s.el, err);
      s.mounted = null; // next visit retries
    });
  }
  return s.mounted;
}

async function route() {
  const { name, args } = parseHash(location.hash);
  if (!PANELS.some((p) => p.name === name)) {
    history.replaceState(null, '', DEFAULT_ROUTE);
    return route();
  }
  currentName = name;
  for (const p of PANELS) {
    const tab = $(`#tab-${p.name}`);
    const active = p.name === name;
    tab.classList.toggle('active', active);
    tab.setAttribute('aria-selected', active ? 'true' : 'false');
    tab.tabIndex = active ? 0 : -1;
    const s = state.get(p.name);
    if (s) s.el.hidden = !active;
  }
  const s = panelState(name);
  s.el.hidden = false;
  updateTitle();
  let panel;
  try {
    panel = await ensureMounted(name);
  } catch (_) {
    return; // already reported in the panel
  }
  if (currentName !== name) return; // the user moved on while it loaded
  try {
    await panel.show(s.el, ctx, args);
  } catch (err) {
    console.warn(`haniwa: panel "${name}" show() failed`, err);
    toast((err && err.message) || String(err), 'error');
  }
}

function updateTitle() {
  document.title = currentName ? `${t(`shell.tab.${currentName}`)} · haniwa` : 'haniwa';
}

// ---- API key dialog -----------------------------------------------------------------------------

function refreshKeyButton() {
  const btn = $('#api-key-button');
  const set = !!api.getApiKey();
  btn.dataset.i18n = set ? 'shell.apiKeySet' : 'shell.apiKey';
  btn.textContent = t(btn.dataset.i18n);
  btn.classList.toggle('key-set', set);
}

function openKeyDialog() {
  const dlg = $('#api-key-dialog');
  const input = $('#api-key-input');
  input.value = api.getApiKey();
  input.type = 'password';
  $('#api-key-show').checked = false;
  if (typeof dlg.showModal === 'function') dlg.showModal();
  else dlg.setAttribute('open', '');
  input.focus();
}

function closeKeyDialog() {
  const dlg = $('#api-key-dialog');
  if (typeof dlg.close === 'function') dlg.close();
  else dlg.removeAttribute('open');
}

function wireKeyDialog() {
  $('#api-key-button').addEventListener('click', openKeyDialog);
  $('#api-key-show').addEventListener('change', (e) => {
    $('#api-key-input').type = e.target.checked ? 'text' : 'password';
  });
  $('#api-key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('#api-key-input').value.trim();
    api.setApiKey(v);
    refreshKeyButton();
    closeKeyDialog();
    toast(t(v ? 'shell.apiKeySaved' : 'shell.apiKeyCleared'), 'ok');
  });
  $('#api-key-clear').addEventListener('click', () => {
    api.setApiKey('');
    $('#api-key-input').value = '';
    refreshKeyButton();
    closeKeyDialog();
    toast(t('shell.apiKeyCleared'), 'ok');
  });
  $('#api-key-cancel').addEventListener('click', closeKeyDialog);
}

// ---- keyboard -----------------------------------------------------------------------------------

function isTyping(el) {
  if (!el) return false;
  const tag = el.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || el.isContentEditable;
}

function wireKeyboard() {
  document.addEventListener('keydown', (e) => {
    if (e.altKey && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      const m = /^Digit([1-9])$/.exec(e.code || '') || /^([1-9])$/.exec(e.key || '');
      if (m) {
        const p = PANELS[Number(m[1]) - 1];
        if (p) {
          e.preventDefault();
          navigate(`#/${p.name}`);
          $(`#tab-${p.name}`).focus();
        }
        return;
      }
    }
    if (e.key === '/' && !e.ctrlKey && !e.metaKey && !e.altKey && !isTyping(document.activeElement)) {
      const s = currentName && state.get(currentName);
      const target = s && s.el.querySelector('[data-autofocus]');
      if (target) {
        e.preventDefault();
        target.focus();
      }
    }
  });
  // arrow keys move between tabs (WAI-ARIA tabs pattern)
  $('#tabs').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const i = PANELS.findIndex((p) => p.name === currentName);
    const n = (i + (e.key === 'ArrowRight' ? 1 : PANELS.length - 1)) % PANELS.length;
    e.preventDefault();
    navigate(`#/${PANELS[n].name}`);
    $(`#tab-${PANELS[n].name}`).focus();
  });
}

// ---- boot ---------------------------------------------------------------------------------------

function buildTabs() {
  const nav = $('#tabs');
  nav.replaceChildren(...PANELS.map((p, i) => h('a', {
    class: 'tab',
    id: `tab-${p.name}`,
    href: `#/${p.name}`,
    role: 'tab',
    'aria-controls': `panel-${p.name}`,
    'aria-selected': 'false',
    'data-testid': `tab-${p.name}`,
    'data-i18n': `shell.tab.${p.name}`,
    title: `Alt+${i + 1}`,
  }, t(`shell.tab.${p.name}`))));
}

function boot() {
  document.documentElement.lang = lang();
  buildTabs();
  $('#lang-toggle').addEventListener('click', () => setLang(lang() === 'ja' ? 'en' : 'ja'));
  wireKeyDialog();
  wireKeyboard();
  onLangChange(() => { refreshKeyButton(); updateTitle(); });
  translateDom(document);
  refreshKeyButton();
  window.addEventListener('hashchange', route);
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();

export { ctx };
