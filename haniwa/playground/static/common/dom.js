// haniwa playground — the small DOM helpers every panel shares (no panel state, no strings of its own).
//
// Exports:
//   h(tag, attrs, ...children)   element builder. attrs: class, testid (data-testid), text (textContent),
//                                dataset {…}, style {width: '40%', '--x': '2'} (set through CSSOM),
//                                on<event>: fn (listener); undefined / null / false are skipped, true is
//                                an empty attribute, anything else an attribute.
//                                Children: nodes, or anything else as a text node (never HTML).
//   tx(ctx, tag, key, attrs)     an element whose whole text is the translation of `key` (data-i18n, so the
//                                shell's translateDom re-translates it on a language switch)
//   errMessage(e)                an error's message ('unknown error' when there is none)
//   isAbort(e)                   whether e is the cancellation of an AbortSignal
//   readNumbers(spec, inputs)    {key: number} from number inputs: spec rows [key, …, parse] (parse is the
//                                fifth item), inputs {key: <input>}; empty or unparsable inputs are left out
//   writeNumbers(spec, inputs, values)   put values[key] into those inputs ('' when missing)
//
// Numbers and times are formatted in format.js.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') setStyle(el, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The page's CSP has no 'unsafe-inline' for styles, so a style="" attribute would be refused; properties
// set through CSSOM (el.style) are not inline markup and pass.
function setStyle(el, style) {
  if (typeof style !== 'object') throw new TypeError('h(): style takes an object of CSS properties');
  for (const [name, value] of Object.entries(style)) {
    if (name.startsWith('--')) el.style.setProperty(name, value);
    else el.style[name] = value;
  }
}

export function tx(ctx, tag, key, attrs) {
  const el = h(tag, attrs);
  el.dataset.i18n = key;
  el.textContent = ctx.t(key);
  return el;
}

export function errMessage(e) {
  if (!e) return 'unknown error';
  return e.message || String(e);
}

export function isAbort(e) {
  return e && (e.name === 'AbortError' || e.code === 'AbortError');
}

export function readNumbers(spec, inputs) {
  const out = {};
  for (const [key, , , , parse] of spec) {
    const raw = inputs[key].value.trim();
    if (raw === '') continue;
    const v = parse(raw);
    if (Number.isFinite(v)) out[key] = v;
  }
  return out;
}

export function writeNumbers(spec, inputs, values) {
  for (const [key] of spec) {
    const v = values ? values[key] : undefined;
    inputs[key].value = v === undefined || v === null ? '' : String(v);
  }
}
