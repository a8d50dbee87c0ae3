// haniwa playground — HTTP client for the public APIs (OpenAI surface, Bedrock surface, haniwa REST).
//
// Every function is async and throws ApiError on failure (HTTP error, in-stream error, network error).
// A request cancelled through its AbortSignal rejects with the browser's own DOMException named
// 'AbortError' (check `err.name === 'AbortError'`), not with ApiError.
//
// Exports:
//   class ApiError extends Error { status, code, message, type }
//   getApiKey() / setApiKey(key)               localStorage 'haniwa.apiKey' ('' / null clears it)
//   request(method, path, body?, {signal, headers}?)  → parsed JSON, or null for an empty body
//   listModels({refresh}?)                      → [{id, name, provider, vision, streaming, chat}] (cached)
//   streamChat(body, {signal, onDelta(textSoFar, delta), onFirstToken()})
//       → {text, usage: {prompt_tokens, completion_tokens}, ttftMs, latencyMs, tokensPerSecond, finishReason}
//   chat(body, {signal})                        → non-streaming POST /v1/chat/completions (raw JSON)
//   readEventStream(response)                   async generator of {type, name, payload, headers}
//   decodeEventStream()                         TransformStream<Uint8Array, {type, name, payload, headers}>
//   invokeAgent(agentId, aliasId, sessionId, {inputText, enableTrace=true, sessionState, ...more},
//               {signal, onChunk(text, chunk), onTrace(traceObj), onReturnControl(obj)})
//       → {text, citations, returnControl, sessionId}
//   getUsage({since, limit})                    GET /haniwa/v1/usage
//   conversations.{list, create, get, update, remove, addMessage, exportUrl}
//   comparisons.{list, create, get, remove}
//   b64ToUtf8(b64), newSessionId()

const KEY_STORAGE = 'haniwa.apiKey';

export class ApiError extends Error {
  constructor(status, code, message, type) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || '';
    this.type = type || '';
  }
}

export function getApiKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ''; } catch (_) { return ''; }
}

export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch (_) { /* ignore */ }
}

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const key = getApiKey();
  if (key) h['Authorization'] = `Bearer ${key}`;
  return h;
}

// ---- errors -------------------------------------------------------------------------------------

function errorFromBody(status, headers, body) {
  // Bedrock shape: x-amzn-errortype header (possibly "Code:uri") + {"message"} / {"Message"}
  const amzn = headers && headers.get ? headers.get('x-amzn-errortype') : null;
  if (body && typeof body === 'object' && body.error && typeof body.error === 'object') {
    const e = body.error;
    return new ApiError(status, e.code || e.type || '', e.message || '', e.type || '');
  }
  let code = amzn ? String(amzn).split(':')[0] : '';
  let message = '';
  if (body && typeof body === 'object') {
    message = body.message || body.Message || '';
    if (!code && (body.__type || body.code)) code = String(body.__type || body.code).split('#').pop();
  } else if (typeof body === 'string') {
    message = body.slice(0, 500);
  }
  if (!message) message = `HTTP ${status}`;
  return new ApiError(status, code, message, '');
}

async function errorFromResponse(res) {
  let text = '';
  try { text = await res.text(); } catch (_) { /* ignore */ }
  let body = text;
  try { body = text ? JSON.parse(text) : null; } catch (_) { /* keep the text */ }
  return errorFromBody(res.status, res.headers, body);
}

async function doFetch(url, init) {
  try {
    return await fetch(url, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NetworkError', (e && e.message) || 'network error');
  }
}

// ---- plain JSON requests ------------------------------------------------------------------------

export async function request(method, path, body, opts = {}) {
  const headers = authHeaders(opts.headers);
  const init = { method: method.toUpperCase(), headers, signal: opts.signal };
  if (body !== undefined && body !== null) {
    headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await doFetch(path, init);
  if (!res.ok) throw await errorFromResponse(res);
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch (_) {
    throw new ApiError(res.status, 'InvalidResponse', 'response is not JSON');
  }
}

// ---- models -------------------------------------------------------------------------------------

let modelsPromise = null;

export function listModels(opts = {}) {
  if (!modelsPromise || opts.refresh) {
    modelsPromise = request('GET', '/foundation-models').then((out) =>
      ((out && out.modelSummaries) || []).map((m) => {
        const inMod = m.inputModalities || [];
        const outMod = m.outputModalities || [];
        return {
          id: m.modelId,
          name: m.modelName || m.modelId,
          provider: m.providerName || '',
          vision: inMod.includes('IMAGE'),
          streaming: !!m.responseStreamingSupported,
          chat: outMod.includes('TEXT'),
        };
      }));
    modelsPromise.catch(() => { modelsPromise = null; }); // retry next time after a failure
  }
  return modelsPromise;
}

// ---- OpenAI chat completions (SSE) --------------------------------------------------------------

async function* sseEvents(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      buf = buf.replace(/\r\n?/g, '\n');
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (data) yield data;
      }
    }
    buf += decoder.decode();
    const rest = buf.split('\n').filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
    if (rest) yield rest;
  } finally {
    try { reader.releaseLock(); } catch (_) { /* ignore */ }
  }
}

export async function streamChat(body, opts = {}) {
  const { signal, onDelta, onFirstToken } = opts;
  const payload = Object.assign({}, body, { stream: true, stream_options: { include_usage: true } });
  for (const k of Object.keys(payload)) if (payload[k] === undefined || payload[k] === null) delete payload[k];
  const t0 = performance.now();
  const res = await doFetch('/v1/chat/completions', {
    method: 'POST',
    headers: authHeaders({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
    body: JSON.stringify(payload),
    signal,
  });
  if (!res.ok) throw await errorFromResponse(res);
  let text = '';
  let ttftMs = null;
  let usage = null;
  let finishReason = null;
  for await (const data of sseEvents(res)) {
    if (data === '[DONE]') break;
    let ev;
    try { ev = JSON.parse(data); } catch (_) { continue; }
    if (ev.error) throw errorFromBody(500, null, ev);
    if (ev.usage) usage = ev.usage;
    for (const ch of ev.choices || []) {
      const d = ch.delta || {};
      if (typeof d.content === 'string' && d.content.length) {
        if (ttftMs === null) {
          ttftMs = performance.now() - t0;
          if (onFirstToken) onFirstToken();
        }
        text += d.content;
        if (onDelta) onDelta(text, d.content);
      }
      if (ch.finish_reason) finishReason = ch.finish_reason;
    }
  }
  const latencyMs = performance.now() - t0;
  if (ttftMs === null) ttftMs = latencyMs;
  const u = {
    prompt_tokens: (usage && usage.prompt_tokens) || 0,
    completion_tokens: (usage && usage.completion_tokens) || 0,
  };
  const genMs = latencyMs - ttftMs;
  const denom = (genMs > 0 ? genMs : latencyMs) / 1000;
  const tokensPerSecond = denom > 0 ? u.completion_tokens / denom : 0;
  return { text, usage: u, ttftMs, latencyMs, tokensPerSecond, finishReason };
}

export async function chat(body, opts = {}) {
  return request('POST', '/v1/chat/completions', Object.assign({}, body, { stream: false }), opts);
}

// ---- AWS event stream (application/vnd.amazon.eventstream) --------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes, start, end) {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const utf8 = new TextDecoder();

function parseHeaders(bytes, view, start, end) {
  const out = {};
  let p = start;
  while (p < end) {
    const nameLen = bytes[p]; p += 1;
    const name = utf8.decode(bytes.subarray(p, p + nameLen)); p += nameLen;
    const type = bytes[p]; p += 1;
    let value;
    switch (type) {
      case 0: value = true; break;
      case 1: value = false; break;
      case 2: value = view.getInt8(p); p += 1; break;
      case 3: value = view.getInt16(p); p += 2; break;
      case 4: value = view.getInt32(p); p += 4; break;
      case 5: value = Number(view.getBigInt64(p)); p += 8; break;
      case 6: { const n = view.getUint16(p); p += 2; value = bytes.slice(p, p + n); p += n; break; }
      case 7: { const n = view.getUint16(p); p += 2; value = utf8.decode(bytes.subarray(p, p + n)); p += n; break; }
      case 8: value = new Date(Number(view.getBigInt64(p))); p += 8; break;
      case 9: value = Array.from(bytes.subarray(p, p + 16), (b) => b.toString(16).padStart(2, '0')).join(''); p += 16; break;
      default: throw new ApiError(0, 'InvalidEventStream', `unknown header type ${type}`);
    }
    out[name] = value;
  }
  return out;
}

function decodeMessage(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const total = view.getUint32(0);
  const headersLen = view.getUint32(4);
  if (view.getUint32(8) !== crc32(bytes, 0, 8)) throw new ApiError(0, 'InvalidEventStream', 'prelude CRC mismatch');
  if (view.getUint32(total - 4) !== crc32(bytes, 0, total - 4)) {
    throw new ApiError(0, 'InvalidEventStream', 'message CRC mismatch');
  }
  const headers = parseHeaders(bytes, view, 12, 12 + headersLen);
  const raw = bytes.subarray(12 + headersLen, total - 4);
  let payload = null;
  if (raw.length) {
    const s = utf8.decode(raw);
    try { payload = JSON.parse(s); } catch (_) { payload = s; }
  }
  const isException = headers[':message-type'] === 'exception' || headers[':exception-type'] !== undefined;
  const isError = headers[':message-type'] === 'error';
  return {
    type: isException ? ':exception-type' : isError ? ':error-code' : ':event-type',
    name: isException ? headers[':exception-type'] : isError ? headers[':error-code'] : headers[':event-type'],
    payload,
    headers,
  };
}

// Splits a byte stream into messages. push(chunk) returns the completed messages.
function frameSplitter() {
  let buf = new Uint8Array(0);
  return {
    push(chunk) {
      if (chunk && chunk.length) {
        const nb = new Uint8Array(buf.length + chunk.length);
        nb.set(buf, 0); nb.set(chunk, buf.length);
        buf = nb;
      }
      const out = [];
      while (buf.length >= 12) {
        const total = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(0);
        if (total < 16) throw new ApiError(0, 'InvalidEventStream', 'bad frame length');
        if (buf.length < total) break;
        out.push(decodeMessage(buf.slice(0, total)));
        buf = buf.slice(total);
      }
      return out;
    },
    leftover() { return buf.length; },
  };
}

export async function* readEventStream(response) {
  const reader = response.body.getReader();
  const split = frameSplitter();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const m of split.push(value)) yield m;
    }
    if (split.leftover()) throw new ApiError(0, 'InvalidEventStream', 'stream ended mid-frame');
  } finally {
    try { reader.releaseLock(); } catch (_) { /* ignore */ }
  }
}

export function decodeEventStream() {
  const split = frameSplitter();
  return new TransformStream({
    transform(chunk, controller) {
      for (const m of split.push(chunk)) controller.enqueue(m);
    },
    flush() {
      if (split.leftover()) throw new ApiError(0, 'InvalidEventStream', 'stream ended mid-frame');
    },
  });
}

export function b64ToUtf8(b64) {
  const bin = atob(b64 || '');
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

export function newSessionId() {
  if (crypto && crypto.randomUUID) return crypto.randomUUID();
  return `s-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

// ---- Bedrock agents: InvokeAgent ----------------------------------------------------------------

export async function invokeAgent(agentId, aliasId, sessionId, input = {}, handlers = {}) {
  const { inputText, enableTrace = true, sessionState, ...more } = input;
  const body = Object.assign({}, more, { enableTrace });
  if (inputText !== undefined && inputText !== null) body.inputText = inputText;
  if (sessionState) body.sessionState = sessionState;
  const e = encodeURIComponent;
  const path = `/agents/${e(agentId)}/agentAliases/${e(aliasId)}/sessions/${e(sessionId)}/text`;
  const res = await doFetch(path, {
    method: 'POST',
    headers: authHeaders({ 'Content-Type': 'application/json', Accept: 'application/vnd.amazon.eventstream' }),
    body: JSON.stringify(body),
    signal: handlers.signal,
  });
  if (!res.ok) throw await errorFromResponse(res);
  let text = '';
  const citations = [];
  let returnControl = null;
  for await (const msg of readEventStream(res)) {
    if (msg.type !== ':event-type') {
      const p = msg.payload && typeof msg.payload === 'object' ? msg.payload : { message: String(msg.payload || '') };
      throw new ApiError(500, msg.name || 'InternalServerException', p.message || p.Message || msg.name);
    }
    const p = msg.payload || {};
    if (msg.name === 'chunk') {
      const piece = p.bytes ? b64ToUtf8(p.bytes) : '';
      text += piece;
      if (p.attribution && Array.isArray(p.attribution.citations)) citations.push(...p.attribution.citations);
      if (handlers.onChunk) handlers.onChunk(piece, p);
    } else if (msg.name === 'trace') {
      if (handlers.onTrace) handlers.onTrace(p);
    } else if (msg.name === 'returnControl') {
      returnControl = p;
      if (handlers.onReturnControl) handlers.onReturnControl(p);
    }
  }
  return { text, citations, returnControl, sessionId };
}

// ---- haniwa REST --------------------------------------------------------------------------------

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export function getUsage({ since, limit = 200, signal } = {}) {
  return request('GET', `/haniwa/v1/usage${qs({ since, limit })}`, undefined, { signal });
}

const enc = encodeURIComponent;

export const conversations = {
  list: (limit = 50) => request('GET', `/haniwa/v1/conversations${qs({ limit })}`).then((r) => (r && r.data) || []),
  create: (body) => request('POST', '/haniwa/v1/conversations', body),
  get: (id) => request('GET', `/haniwa/v1/conversations/${enc(id)}`),
  update: (id, patch) => request('PATCH', `/haniwa/v1/conversations/${enc(id)}`, patch),
  remove: (id) => request('DELETE', `/haniwa/v1/conversations/${enc(id)}`),
  addMessage: (id, msg) => request('POST', `/haniwa/v1/conversations/${enc(id)}/messages`, msg),
  exportUrl: (id) => `/haniwa/v1/conversations/${enc(id)}?download=1`,
};

export const comparisons = {
  list: (limit = 50) => request('GET', `/haniwa/v1/comparisons${qs({ limit })}`).then((r) => (r && r.data) || []),
  create: (body) => request('POST', '/haniwa/v1/comparisons', body),
  get: (id) => request('GET', `/haniwa/v1/comparisons/${enc(id)}`),
  remove: (id) => request('DELETE', `/haniwa/v1/comparisons/${enc(id)}`),
};
