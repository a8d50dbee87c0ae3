// haniwa playground — Chat panel (#/chat, #/chat/<conversationId>).
//
// Conversations are kept by the server (/haniwa/v1/conversations); answers stream from the
// OpenAI-compatible /v1/chat/completions through api.streamChat. Model and user text is always
// rendered with textContent (never innerHTML).
//
// Modules: panel.js (settings, messages, sending), conversations.js (the sidebar), strings.js, chat.css.

import './strings.js';
import { onFrame } from '../common/frame.js';
import { errMessage, h, isAbort, readNumbers, tx, writeNumbers } from '../common/dom.js';
import { definePanel } from '../common/panel.js';
import { conversationList } from './conversations.js';
import { fmtTps, num } from '../common/format.js';

const MAX_IMAGE_BYTES = 8 * 1024 * 1024;
const PARAMS = [
  // key, testid, i18n key, input attributes
  ['temperature', 'chat-temperature', 'chat.temperature', { min: '0', max: '2', step: '0.1' }, parseFloat],
  ['top_p', 'chat-top-p', 'chat.topP', { min: '0', max: '1', step: '0.05' }, parseFloat],
  ['top_k', 'chat-top-k', 'chat.topK', { min: '0', step: '1' }, (v) => parseInt(v, 10)],
  ['max_tokens', 'chat-max-tokens', 'chat.maxTokens', { min: '1', step: '1' }, (v) => parseInt(v, 10)],
];

// ---------------------------------------------------------------------------------------------------
// panel

const S = {
  ctx: null,
  el: null,
  models: [],          // chat-capable models
  convId: null,        // the open conversation, null for a new one
  conv: null,          // its metadata
  messages: [],        // stored messages [{role, content, ...}]
  list: null,          // the sidebar (conversations.js)
  image: null,         // {dataUrl, name}
  abort: null,         // AbortController of the running stream
  busy: false,
  loadSeq: 0,
  ui: {},
};

export default definePanel({
  stylesheets: [new URL('chat.css', import.meta.url)],
  mount,
  show,
});

async function mount(el, ctx) {
  S.ctx = ctx;
  S.el = el;
  buildUi(el, ctx);
  ctx.onLangChange(() => {
    S.list.render();
    refreshStats();
    updateAttachState();
  });
  try {
    const all = await ctx.api.listModels();
    S.models = (all || []).filter((m) => m.chat !== false);
  } catch (e) {
    ctx.toast(errMessage(e), 'error');
    S.models = [];
  }
  fillModels();
  // another panel (Customization's "deploy and try") served a new model: list it and select it
  window.addEventListener('haniwa:select-model', async (e) => {
    try { S.models = (await ctx.api.listModels()).filter((m) => m.chat !== false); } catch (_) { /* keep the list */ }
    fillModels(e.detail && e.detail.id);
  });
  await S.list.refresh();
}

async function show(el, ctx, args) {
  const id = (args && args[0]) || null;
  if (id && id === S.convId) {
    return;   // already showing it (e.g. right after the first message created it)
  }
  if (!id) {
    if (S.convId !== null || S.messages.length) newConversation();
    S.ui.input.focus();
    return;
  }
  await openConversation(id);
}

function buildUi(el, ctx) {
  const ui = S.ui;
  el.replaceChildren();
  el.classList.add('chat-panel');

  // sidebar -------------------------------------------------------------------------------------
  ui.newBtn = tx(ctx, 'button', 'chat.new', { type: 'button', class: 'btn primary chat-new', testid: 'chat-new' });
  ui.newBtn.addEventListener('click', () => {
    stopStreaming();
    newConversation();
    ctx.navigate('#/chat');
    ui.input.focus();
  });
  S.list = conversationList(ctx, {
    currentId: () => S.convId,
    onDeleted: () => {
      stopStreaming();
      newConversation();
      ctx.navigate('#/chat');
    },
  });
  const sidebar = h('aside', { class: 'chat-sidebar card' },
    ui.newBtn,
    tx(ctx, 'h2', 'chat.conversations', { class: 'chat-side-title' }),
    S.list.el, S.list.empty);

  // settings ------------------------------------------------------------------------------------
  ui.model = h('select', { id: 'chat-model', testid: 'chat-model', class: 'chat-select' });
  ui.model.addEventListener('change', () => {
    try { localStorage.setItem('haniwa.chat.model', ui.model.value); } catch (_) { /* ignore */ }
    updateAttachState();
    patchConversation({ model_id: ui.model.value });
  });
  ui.system = h('textarea', { id: 'chat-system', testid: 'chat-system', rows: '3' });
  ui.system.dataset.i18nPlaceholder = 'chat.systemPlaceholder';
  ui.system.placeholder = ctx.t('chat.systemPlaceholder');
  ui.system.addEventListener('change', () => patchConversation({ system: ui.system.value }));

  ui.params = {};
  const paramFields = PARAMS.map(([key, testid, label, attrs]) => {
    const input = h('input', { id: testid, testid, type: 'number', inputmode: 'decimal', ...attrs });
    input.dataset.i18nPlaceholder = 'chat.default';
    input.placeholder = ctx.t('chat.default');
    input.addEventListener('change', () => patchConversation({ params: readNumbers(PARAMS, S.ui.params) }));
    ui.params[key] = input;
    return h('div', { class: 'field' }, tx(ctx, 'label', label, { for: testid }), input);
  });

  ui.settingsToggle = tx(ctx, 'button', 'chat.settings', {
    type: 'button', class: 'chat-settings-toggle', testid: 'chat-settings-toggle', 'aria-expanded': 'true',
    'aria-controls': 'chat-settings-body',
  });
  ui.settingsBody = h('div', { class: 'chat-settings-body', id: 'chat-settings-body' },
    h('div', { class: 'field' }, tx(ctx, 'label', 'chat.system', { for: 'chat-system' }), ui.system),
    h('div', { class: 'chat-params' }, paramFields));
  ui.settings = h('aside', { class: 'chat-settings card', testid: 'chat-settings' },
    tx(ctx, 'h2', 'chat.settings', { class: 'chat-settings-title' }),
    ui.settingsToggle,
    h('div', { class: 'field chat-model-field' }, tx(ctx, 'label', 'chat.model', { for: 'chat-model' }), ui.model),
    ui.settingsBody);
  ui.settingsToggle.addEventListener('click', () => {
    const collapsed = ui.settings.classList.toggle('collapsed');
    ui.settingsToggle.setAttribute('aria-expanded', String(!collapsed));
  });

  // messages ------------------------------------------------------------------------------------
  ui.empty = tx(ctx, 'p', 'chat.empty', { class: 'muted chat-empty' });
  ui.messages = h('div', {
    class: 'chat-messages', testid: 'chat-messages', role: 'log', 'aria-live': 'polite',
  }, ui.empty);
  ui.messages.dataset.i18nAriaLabel = 'chat.messages';
  ui.messages.setAttribute('aria-label', ctx.t('chat.messages'));

  // composer ------------------------------------------------------------------------------------
  ui.input = h('textarea', { id: 'chat-input', testid: 'chat-input', rows: '2', 'data-autofocus': true });
  ui.input.dataset.i18nPlaceholder = 'chat.inputPlaceholder';
  ui.input.placeholder = ctx.t('chat.inputPlaceholder');
  ui.input.setAttribute('aria-label', ctx.t('chat.send'));
  ui.input.addEventListener('keydown', onComposerKey);
  ui.input.addEventListener('input', autoGrow);

  ui.file = h('input', { type: 'file', accept: 'image/*', class: 'visually-hidden chat-file', testid: 'chat-attach-input', tabindex: '-1' });
  ui.file.addEventListener('change', onFileChosen);
  ui.attach = h('button', { type: 'button', class: 'btn chat-attach', testid: 'chat-attach' }, '📎');
  ui.attach.addEventListener('click', () => ui.file.click());
  ui.chips = h('div', { class: 'chat-chips' });
  ui.send = tx(ctx, 'button', 'chat.send', { type: 'submit', class: 'btn primary', testid: 'chat-send' });
  ui.stop = tx(ctx, 'button', 'chat.stop', { type: 'button', class: 'btn danger', testid: 'chat-stop', hidden: true });
  ui.stop.addEventListener('click', stopStreaming);
  ui.form = h('form', { class: 'chat-composer card' },
    ui.chips,
    h('div', { class: 'chat-composer-row' }, ui.attach, ui.file, ui.input, ui.send, ui.stop));
  ui.form.addEventListener('submit', (ev) => { ev.preventDefault(); send(); });

  const main = h('div', { class: 'chat-main' }, ui.messages, ui.form);
  el.append(h('div', { class: 'chat-layout' }, sidebar, main, ui.settings));

  if (window.matchMedia && window.matchMedia('(max-width: 480px)').matches) {
    // narrow screens start with the settings folded (the model select stays visible)
    ui.settings.classList.add('collapsed');
    ui.settingsToggle.setAttribute('aria-expanded', 'false');
  }
  updateAttachState();
}

function autoGrow() {
  const ta = S.ui.input;
  ta.style.height = 'auto';
  ta.style.height = Math.min(ta.scrollHeight, 220) + 'px';
}

function onComposerKey(ev) {
  if (ev.key !== 'Enter') return;
  // IME: Enter confirms the conversion (Japanese input), it must not send
  if (ev.isComposing || ev.keyCode === 229) return;
  if (ev.shiftKey) return;   // new line
  ev.preventDefault();
  send();
}

// ---------------------------------------------------------------------------------------------------
// models and settings

function modelInfo(id) {
  return S.models.find((m) => m.id === id) || null;
}

function fillModels(selectId) {
  const sel = S.ui.model;
  const want = selectId || sel.value || (() => {
    try { return localStorage.getItem('haniwa.chat.model'); } catch (_) { return null; }
  })();
  sel.replaceChildren();
  const ids = S.models.map((m) => m.id);
  if (want && !ids.includes(want) && selectId) {
    sel.append(h('option', { value: want, text: want }));   // a conversation's model not listed (alias)
  }
  for (const m of S.models) {
    const label = m.name && m.name !== m.id ? `${m.id} — ${m.name}` : m.id;
    sel.append(h('option', { value: m.id, text: label }));
  }
  if (!sel.options.length) {
    const opt = h('option', { value: '', text: S.ctx.t('chat.noModels') });
    opt.dataset.i18n = 'chat.noModels';
    sel.append(opt);
  }
  const pick = want && Array.from(sel.options).some((o) => o.value === want) ? want
    : ids[0];
  if (pick) sel.value = pick;
  updateAttachState();
}

function updateAttachState() {
  const ui = S.ui;
  if (!ui.attach) return;
  const info = modelInfo(ui.model.value);
  const vision = !!(info && info.vision);
  ui.attach.disabled = !vision || S.busy;
  const title = S.ctx.t(vision ? 'chat.attach' : 'chat.attachDisabled');
  ui.attach.title = title;
  ui.attach.setAttribute('aria-label', title);
  if (!vision && S.image) clearImage();
}

async function patchConversation(body) {
  if (!S.convId) return;
  const id = S.convId;
  try {
    const conv = await S.ctx.api.request('PATCH', `/haniwa/v1/conversations/${encodeURIComponent(id)}`, body);
    if (S.convId === id) S.conv = conv;
    S.list.refresh();
  } catch (e) {
    S.ctx.toast(errMessage(e), 'error');
  }
}

// ---------------------------------------------------------------------------------------------------
// image attachment

function onFileChosen() {
  const file = S.ui.file.files && S.ui.file.files[0];
  S.ui.file.value = '';
  if (!file) return;
  if (file.size > MAX_IMAGE_BYTES) {
    S.ctx.toast(S.ctx.t('chat.imageTooLarge', { mb: MAX_IMAGE_BYTES / 1024 / 1024 }), 'error');
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    S.image = { dataUrl: String(reader.result), name: file.name };
    renderChips();
  };
  reader.onerror = () => S.ctx.toast(errMessage(reader.error), 'error');
  reader.readAsDataURL(file);
}

function clearImage() {
  S.image = null;
  renderChips();
}

function renderChips() {
  const { chips } = S.ui;
  chips.replaceChildren();
  if (!S.image) return;
  const remove = h('button', { type: 'button', class: 'chip-remove', testid: 'chat-attach-remove' }, '×');
  remove.title = S.ctx.t('chat.removeImage');
  remove.setAttribute('aria-label', S.ctx.t('chat.removeImage'));
  remove.addEventListener('click', () => { clearImage(); S.ui.input.focus(); });
  chips.append(h('span', { class: 'chip chat-chip', testid: 'chat-attachment' },
    h('img', { src: S.image.dataUrl, alt: S.image.name }),
    h('span', { class: 'chip-name', text: S.image.name }),
    remove));
}

// ---------------------------------------------------------------------------------------------------
// opening / resetting a conversation

function newConversation() {
  S.loadSeq += 1;
  S.convId = null;
  S.conv = null;
  S.messages = [];
  clearImage();
  renderMessages();
  S.list.render();
}

async function openConversation(id) {
  const ctx = S.ctx;
  stopStreaming();
  const seq = ++S.loadSeq;
  let conv;
  try {
    conv = await ctx.api.request('GET', `/haniwa/v1/conversations/${encodeURIComponent(id)}`);
  } catch (e) {
    if (seq !== S.loadSeq) return;
    ctx.toast(ctx.t('chat.loadFailed', { message: errMessage(e) }), 'error');
    newConversation();
    ctx.navigate('#/chat');
    return;
  }
  if (seq !== S.loadSeq) return;
  S.convId = conv.id;
  S.conv = conv;
  S.messages = conv.messages || [];
  fillModels(conv.model_id);
  S.ui.system.value = conv.system || '';
  writeNumbers(PARAMS, S.ui.params, conv.params || {});
  clearImage();
  renderMessages();
  S.list.render();
}

function renderMessages() {
  const { ui } = S;
  ui.messages.replaceChildren();
  if (!S.messages.length) {
    ui.messages.append(ui.empty);
    return;
  }
  for (const m of S.messages) {
    if (m.role === 'user') {
      appendUser(m.content);
    } else {
      const { bubble, stats } = appendAssistant();
      setText(bubble, m.content);
      bubble.dataset.streaming = 'false';
      setStats(stats, {
        tokens: m.output_tokens, latency: m.latency_ms,
        tps: m.output_tokens && m.latency_ms ? m.output_tokens / (m.latency_ms / 1000) : null,
      });
    }
  }
  scrollToBottom(true);
}

function appendUser(text, imageUrl) {
  const { ui } = S;
  if (ui.empty.parentNode) ui.empty.remove();
  const bubble = h('div', { class: 'msg-bubble msg-user', testid: 'msg-user' });
  if (imageUrl) bubble.append(h('img', { class: 'msg-image', src: imageUrl, alt: '' }));
  bubble.append(h('span', { class: 'msg-text', text }));
  ui.messages.append(h('div', { class: 'msg-row msg-row-user' }, bubble));
  return bubble;
}

function appendAssistant() {
  const { ui } = S;
  if (ui.empty.parentNode) ui.empty.remove();
  const bubble = h('div', { class: 'msg-bubble msg-assistant', testid: 'msg-assistant', 'data-streaming': 'false' },
    h('span', { class: 'msg-text' }));
  const stats = h('div', { class: 'msg-stats muted', testid: 'msg-stats' });
  ui.messages.append(h('div', { class: 'msg-row msg-row-assistant' }, bubble, stats));
  return { bubble, stats };
}

function setText(bubble, text) {
  bubble.querySelector('.msg-text').textContent = text;
}

function setStats(stats, s) {
  stats._s = s;
  if (!s || s.tokens === null || s.tokens === undefined) {
    stats.textContent = s && s.stopped ? S.ctx.t('chat.statsStopped') : '';
    return;
  }
  const tps = fmtTps(num(s.tps) ?? 0);   // a stopped or empty answer reads 0 tokens/s
  stats.textContent = S.ctx.t('chat.stats', { tokens: s.tokens, latency: s.latency ?? '—', tps })
    + (s.stopped ? ` · ${S.ctx.t('chat.statsStopped')}` : '');
  stats.dataset.outputTokens = String(s.tokens);
  if (s.latency !== null && s.latency !== undefined) stats.dataset.latencyMs = String(s.latency);
  stats.dataset.tokensPerSecond = tps;
}

function refreshStats() {
  S.ui.messages.querySelectorAll('.msg-stats').forEach((st) => { if (st._s) setStats(st, st._s); });
}

function scrollToBottom(force) {
  const box = S.ui.messages;
  const near = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  if (force || near) box.scrollTop = box.scrollHeight;
}

// ---------------------------------------------------------------------------------------------------
// sending

function setBusy(busy) {
  S.busy = busy;
  S.ui.send.hidden = busy;
  S.ui.stop.hidden = !busy;
  S.ui.send.disabled = busy;
  updateAttachState();
}

function stopStreaming() {
  if (S.abort) S.abort.abort();
}

function historyFor(messages, system, image) {
  // roles must alternate: leading assistant turns are dropped and runs of one role are joined
  const merged = [];
  for (const m of messages) {
    if (!merged.length && m.role !== 'user') continue;
    const last = merged[merged.length - 1];
    if (last && last.role === m.role) last.content += `\n\n${m.content}`;
    else merged.push({ role: m.role, content: m.content });
  }
  const out = [];
  if (system && system.trim()) out.push({ role: 'system', content: system });
  out.push(...merged);
  const lastUser = out[out.length - 1];
  if (image && lastUser && lastUser.role === 'user') {
    lastUser.content = [
      { type: 'text', text: lastUser.content },
      { type: 'image_url', image_url: { url: image } },
    ];
  }
  return out;
}

async function send() {
  const { ui, ctx } = S;
  if (S.busy) return;
  const text = ui.input.value.trim();
  const image = S.image ? S.image.dataUrl : null;
  if (!text && !image) {
    ui.input.focus();
    return;
  }
  const model = ui.model.value;
  if (!model) {
    ctx.toast(ctx.t('chat.noModels'), 'error');
    return;
  }
  const system = ui.system.value;
  const params = readNumbers(PARAMS, S.ui.params);
  setBusy(true);
  const abort = new AbortController();
  S.abort = abort;
  const content = text || ctx.t('chat.imageOnly');
  ui.input.value = '';
  autoGrow();
  clearImage();
  appendUser(content, image);
  const { bubble, stats } = appendAssistant();
  bubble.dataset.streaming = 'true';
  scrollToBottom(true);

  let convId = S.convId;
  let text_ = '';
  try {
    if (!convId) {
      const conv = await ctx.api.request('POST', '/haniwa/v1/conversations', { model_id: model, system: system || null, params });
      convId = conv.id;
      S.convId = conv.id;
      S.conv = conv;
      S.loadSeq += 1;
      ctx.navigate(`#/chat/${encodeURIComponent(conv.id)}`);
    }
    const userMsg = await ctx.api.request('POST', `/haniwa/v1/conversations/${encodeURIComponent(convId)}/messages`,
      { role: 'user', content });
    const local = S.convId === convId ? S.messages : [];
    local.push(userMsg || { role: 'user', content });
    S.list.refresh();

    const body = { model, messages: historyFor(local, system, image), ...params };
    const paint = onFrame((soFar) => {
      if (bubble.dataset.streaming !== 'true') return; // the final text is already there
      setText(bubble, soFar);
      scrollToBottom(false);
    });
    const res = await ctx.api.streamChat(body, {
      signal: abort.signal,
      onDelta: (soFar) => {
        text_ = soFar;
        paint(soFar);
      },
    });
    text_ = res.text;
    setText(bubble, res.text);
    bubble.dataset.streaming = 'false';
    const usage = res.usage || {};
    const outTokens = usage.completion_tokens ?? null;
    const latency = Math.round(res.latencyMs ?? 0);
    setStats(stats, { tokens: outTokens ?? 0, latency, tps: res.tokensPerSecond });
    const saved = await ctx.api.request('POST', `/haniwa/v1/conversations/${encodeURIComponent(convId)}/messages`, {
      role: 'assistant', content: res.text,
      input_tokens: usage.prompt_tokens ?? null, output_tokens: outTokens, latency_ms: latency,
    });
    if (S.convId === convId) S.messages.push(saved || { role: 'assistant', content: res.text });
  } catch (e) {
    bubble.dataset.streaming = 'false';
    if (isAbort(e) || abort.signal.aborted) {
      setStats(stats, { stopped: true });
      if (text_ && convId) {
        // keep what was produced before the stop
        try {
          const saved = await ctx.api.request('POST', `/haniwa/v1/conversations/${encodeURIComponent(convId)}/messages`,
            { role: 'assistant', content: text_ });
          if (S.convId === convId) S.messages.push(saved || { role: 'assistant', content: text_ });
        } catch (_) { /* the stop is what matters */ }
      }
    } else {
      bubble.classList.add('msg-error');
      bubble.append(h('span', { class: 'msg-error-text', testid: 'msg-error', text: ctx.t('chat.error', { message: errMessage(e) }) }));
      ctx.toast(errMessage(e), 'error');
    }
  } finally {
    if (S.abort === abort) S.abort = null;
    setBusy(false);
    S.list.refresh();
    if (bubble.isConnected) ui.input.focus();
  }
}
