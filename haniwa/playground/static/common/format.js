// haniwa playground — the one home for turning numbers and times into text (no DOM, no panel state).
//
// Numbers use en-US digits in both languages, so a figure reads (and parses) the same after a switch.
// A missing value is '—' unless said otherwise.
//
//   num(v)                  v when it is a finite number, else null
//   fmtInt(v)               a whole number with thousands separators: "12,345"
//   fmtMs(v)                milliseconds without separators: one decimal under 10 ("3.5"), whole above ("1234")
//   fmtTps(v)               tokens per second: one decimal under 100 ("42.5"), whole above ("150")
//   fmtCompact(v)           a chart tick: "950", "1.2k", "35k", "1.5M" ('' when missing)
//   fmtBytes(n)             "512 B", "1.5 KB", "2.0 MB"
//   epoch(value)            epoch seconds from seconds, milliseconds (> 1e12) or a date string; null if none
//   fmtDateTime(value, lang, options)   value as for epoch(), in lang's date and time ('' when there is
//                           none; a string that is no date comes back as it is)
//   relTime(ctx, value)     "3 minutes ago" in ctx.lang(); value as for epoch(); '' when there is none

export function num(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function fmtInt(v) {
  const n = num(v);
  return n === null ? '—' : Math.round(n).toLocaleString('en-US');
}

export function fmtMs(v) {
  const n = num(v);
  if (n === null) return '—';
  return n < 10 ? n.toFixed(1) : String(Math.round(n));
}

export function fmtTps(v) {
  const n = num(v);
  if (n === null) return '—';
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

export function fmtCompact(v) {
  const n = num(v);
  if (n === null) return '';
  const a = Math.abs(n);
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toFixed(0)}k`;
  if (a >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(+n.toFixed(a < 10 ? 1 : 0));
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function epoch(v) {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v === 'number') return v > 1e12 ? v / 1000 : v;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? ms / 1000 : null;
}

export function fmtDateTime(value, lang, options) {
  const secs = epoch(value);
  if (secs === null) return value ? String(value) : '';
  const d = new Date(secs * 1000);
  try {
    return d.toLocaleString(lang, options);
  } catch (_) {
    return d.toLocaleString();   // a lang or option this browser does not know
  }
}

export function relTime(ctx, value) {
  const secs = epoch(value);
  if (!secs) return '';
  const diff = secs - Date.now() / 1000;
  const abs = Math.abs(diff);
  let rtf;
  try {
    rtf = new Intl.RelativeTimeFormat(ctx.lang(), { numeric: 'auto' });
  } catch (_) {
    return new Date(secs * 1000).toLocaleString();
  }
  if (abs < 45) return rtf.format(0, 'second');
  if (abs < 3600) return rtf.format(Math.round(diff / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), 'hour');
  if (abs < 86400 * 30) return rtf.format(Math.round(diff / 86400), 'day');
  return new Date(secs * 1000).toLocaleDateString(ctx.lang());
}
