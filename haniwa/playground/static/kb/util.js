// haniwa playground — small helpers shared by the Knowledge-bases panel's modules; the generic DOM helpers
// (h, errMessage, …) are in common/dom.js, numbers and times in common/format.js.
//
//   setContext(ctx)              once, from mount(): the shell's ctx (t, api, lang, toast, …)
//   ctx(), t(key, vars)          the context / a translation
//   tx(tag, key, attrs)          common/dom.js's tx() with that context: an element whose whole text is a
//                                translation that follows language changes
//   field(labelKey, control, hint?)   <label class="field"><span>label</span>control hint</label>
//   placeholder(el, key)         a translated placeholder
//   sourceOf(location), modelLabel(m), fillSelect(sel, models, emptyKey, preferred),
//   arnOf(models, modelId), submitOnEnter(el, fn)
//   shortModel(arn), badgeClass(status), dsType(dataSource), s3Paths(dataSource)

import { h, tx as domTx } from '../common/dom.js';

let current = null;

export function setContext(c) {
  current = c;
}

export function ctx() {
  return current;
}

export function t(key, vars) {
  return current.t(key, vars);
}

export function tx(tag, key, attrs) {
  return domTx(current, tag, key, attrs);
}

export function placeholder(el, key) {
  el.dataset.i18nPlaceholder = key;
  el.placeholder = t(key);
  return el;
}

export function field(labelKey, control, hint) {
  return h('label', { class: 'field' }, tx('span', labelKey), control, hint || null);
}

// where a retrieved passage comes from: an s3:// URI, a CUSTOM document id, a web URL, …
export function sourceOf(location) {
  const l = location || {};
  if (l.s3Location) return l.s3Location.uri;
  if (l.customDocumentLocation) return l.customDocumentLocation.id;
  if (l.webLocation) return l.webLocation.url;
  for (const v of Object.values(l)) if (v && typeof v === 'object') return v.uri || v.url || v.id || '';
  return l.type || '';
}

export function modelLabel(m) {
  return m.modelName && m.modelName !== m.modelId ? `${m.modelId} — ${m.modelName}` : m.modelId;
}

// options are ListFoundationModels summaries, valued by model id; keeps the current choice if still listed
export function fillSelect(sel, models, emptyKey, preferred) {
  const want = sel.value || preferred;
  sel.replaceChildren();
  for (const m of models) sel.append(h('option', { value: m.modelId, text: modelLabel(m) }));
  if (!models.length) {
    const opt = h('option', { value: '', text: t(emptyKey) });
    opt.dataset.i18n = emptyKey;
    sel.append(opt);
    return;
  }
  sel.value = models.some((m) => m.modelId === want) ? want : models[0].modelId;
}

// the ARN ListFoundationModels gave the picked model (Bedrock's fields are named ...Arn)
export function arnOf(models, modelId) {
  const m = models.find((x) => x.modelId === modelId);
  return (m && m.modelArn) || modelId;
}

export function submitOnEnter(el, fn) {
  el.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || ev.shiftKey) return;
    if (ev.isComposing || ev.keyCode === 229) return;   // Enter confirms a Japanese IME conversion
    ev.preventDefault();
    fn();
  });
}

export function shortModel(arn) {
  return String(arn || '').replace(/^arn:aws:bedrock:[^:]*:[^:]*:(foundation-model|inference-profile)\//, '');
}

export function badgeClass(status) {
  if (['COMPLETE', 'INDEXED', 'ACTIVE', 'AVAILABLE'].includes(status)) return 'badge ok';
  if (['FAILED', 'DELETE_UNSUCCESSFUL', 'NOT_FOUND'].includes(status)) return 'badge error';
  if (['STOPPED', 'STOPPING', 'PARTIALLY_INDEXED', 'IGNORED'].includes(status)) return 'badge warn';
  return 'badge accent';
}

export function dsType(ds) {
  return (ds && ds.dataSourceConfiguration && ds.dataSourceConfiguration.type) || '';
}

// the bucket/prefix pairs an S3 data source reads ('' prefix: the whole bucket)
export function s3Paths(ds) {
  const s3 = (ds.dataSourceConfiguration || {}).s3Configuration || {};
  const bucket = String(s3.bucketArn || '').replace(/^arn:aws:s3:::/, '');
  const prefixes = s3.inclusionPrefixes && s3.inclusionPrefixes.length ? s3.inclusionPrefixes : [''];
  return prefixes.map((p) => `${bucket}/${p}`);
}
