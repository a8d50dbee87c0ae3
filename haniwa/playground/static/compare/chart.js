// haniwa playground — the Compare panel's side-by-side picture: one latency bar per model (time to first
// token, then generation) and one tokens/s bar, plain DOM + CSS (compare.css). Bar widths are set through
// CSSOM (h()'s style object), which the page's CSP allows.
//
//   drawChart(ctx, box, results)   draw results ([{model, state, latency_ms, ttft_ms, tokens_per_s}]) into
//                                  box; hides it when there are none

import { h } from '../common/dom.js';
import { fmtMs, fmtTps, num } from '../common/format.js';

export function drawChart(ctx, box, rs) {
  box.hidden = rs.length === 0;
  if (!rs.length) {
    box.replaceChildren();
    return;
  }
  const maxLat = Math.max(0, ...rs.map((r) => num(r.latency_ms) || 0));
  const maxTps = Math.max(0, ...rs.map((r) => num(r.tokens_per_s) || 0));
  const pct = (v, max) => (max > 0 ? Math.max(0, Math.min(100, (v / max) * 100)) : 0);

  const label = (r, i) => h('span', { class: 'cmp-bar-label truncate mono', title: r.model },
    h('span', { class: `cmp-dot cmp-c${i}`, 'aria-hidden': 'true' }), r.model);
  const pending = (r) => (r.state === 'streaming' ? '…' : r.state === 'error' ? ctx.t('compare.state.error')
    : r.state === 'stopped' ? ctx.t('compare.state.stopped') : '—');

  const latRows = rs.map((r, i) => {
    const lat = num(r.latency_ms);
    const ttft = Math.min(num(r.ttft_ms) || 0, lat || 0);
    const track = h('div', { class: 'cmp-track' });
    let value = pending(r);
    if (lat !== null && r.state === 'done') {
      const seg1 = h('div', { class: `cmp-seg cmp-seg-ttft cmp-c${i}`, style: { width: `${pct(ttft, maxLat)}%` } });
      const seg2 = h('div', { class: `cmp-seg cmp-seg-gen cmp-c${i}`, style: { width: `${pct(lat - ttft, maxLat)}%` } });
      track.append(seg1, seg2);
      value = `${fmtMs(lat)} ms`;
      track.title = `${ctx.t('compare.legendTtft')} ${fmtMs(ttft)} ms · ${ctx.t('compare.legendGen')} ${fmtMs(lat - ttft)} ms`;
    } else if (r.state === 'streaming') {
      track.classList.add('cmp-track-busy');
    }
    return h('div', { class: 'cmp-bar-row', testid: `compare-bar-latency-${i}` },
      label(r, i), track, h('span', { class: 'cmp-bar-value mono', text: value }));
  });
  const tpsRows = rs.map((r, i) => {
    const tps = num(r.tokens_per_s);
    const track = h('div', { class: 'cmp-track' });
    let value = pending(r);
    if (tps !== null && r.state === 'done') {
      track.append(h('div', { class: `cmp-seg cmp-seg-tps cmp-c${i}`, style: { width: `${pct(tps, maxTps)}%` } }));
      value = fmtTps(tps);
    } else if (r.state === 'streaming') {
      track.classList.add('cmp-track-busy');
    }
    return h('div', { class: 'cmp-bar-row', testid: `compare-bar-tps-${i}` },
      label(r, i), track, h('span', { class: 'cmp-bar-value mono', text: value }));
  });
  box.replaceChildren(
    h('div', { class: 'cmp-chart-grid' },
      h('div', { class: 'cmp-chart-part' },
        h('div', { class: 'row between cmp-chart-head' },
          h('h3', { class: 'card-title', text: ctx.t('compare.chartLatency') }),
          h('span', { class: 'cmp-legend small muted' },
            h('span', { class: 'cmp-legend-swatch cmp-seg-ttft', 'aria-hidden': 'true' }), ctx.t('compare.legendTtft'),
            h('span', { class: 'cmp-legend-swatch cmp-seg-gen', 'aria-hidden': 'true' }), ctx.t('compare.legendGen'))),
        h('div', { class: 'cmp-bars' }, latRows)),
      h('div', { class: 'cmp-chart-part' },
        h('div', { class: 'row between cmp-chart-head' },
          h('h3', { class: 'card-title', text: ctx.t('compare.chartTps') })),
        h('div', { class: 'cmp-bars' }, tpsRows))));
}
