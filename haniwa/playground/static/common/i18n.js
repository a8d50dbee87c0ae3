// haniwa playground — tiny i18n.
//
//   register({en: {key: '…'}, ja: {key: '…'}})   add strings (panels prefix keys: 'chat.send')
//   t(key, vars)        translate with {name} substitution; falls back to English, then to the key
//   lang()              'ja' | 'en'
//   setLang(l)          switch language, persist in localStorage 'haniwa.lang', re-translate the DOM,
//                       call every onLangChange callback
//   onLangChange(cb)    cb(lang) after each switch; returns an unsubscribe function
//   translateDom(root)  re-translate [data-i18n], [data-i18n-placeholder], [data-i18n-title],
//                       [data-i18n-aria-label] under root (done for document on every setLang)

const STRINGS = { en: {}, ja: {} };
const LANGS = ['en', 'ja'];
const listeners = new Set();

function initialLang() {
  try {
    const saved = localStorage.getItem('haniwa.lang');
    if (saved === 'ja' || saved === 'en') return saved;
  } catch (_) { /* storage may be unavailable */ }
  const nav = (typeof navigator !== 'undefined' && (navigator.language || '')) || '';
  return nav.toLowerCase().startsWith('ja') ? 'ja' : 'en';
}

let current = initialLang();

export function register(table) {
  for (const l of Object.keys(table || {})) {
    if (!STRINGS[l]) STRINGS[l] = {};
    Object.assign(STRINGS[l], table[l]);
  }
}

export function t(key, vars) {
  let s = STRINGS[current] && STRINGS[current][key];
  if (s === undefined) s = STRINGS.en[key];
  if (s === undefined) s = key;
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, (m, name) =>
      Object.prototype.hasOwnProperty.call(vars, name) && vars[name] !== undefined && vars[name] !== null
        ? String(vars[name]) : m);
  }
  return s;
}

export function lang() {
  return current;
}

export function translateDom(root) {
  const r = root || (typeof document !== 'undefined' ? document : null);
  if (!r) return;
  r.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  r.querySelectorAll('[data-i18n-placeholder]').forEach((el) => {
    el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder));
  });
  r.querySelectorAll('[data-i18n-title]').forEach((el) => {
    el.setAttribute('title', t(el.dataset.i18nTitle));
  });
  r.querySelectorAll('[data-i18n-aria-label]').forEach((el) => {
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  });
}

export function setLang(l) {
  if (!LANGS.includes(l)) l = 'en';
  current = l;
  try { localStorage.setItem('haniwa.lang', l); } catch (_) { /* ignore */ }
  if (typeof document !== 'undefined') {
    document.documentElement.lang = l;
    translateDom(document);
  }
  for (const cb of Array.from(listeners)) {
    try { cb(l); } catch (e) { console.warn('onLangChange callback failed', e); }
  }
}

export function onLangChange(cb) {
  listeners.add(cb);
  return () => listeners.delete(cb);
}
