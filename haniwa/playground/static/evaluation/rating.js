// haniwa playground — the Evaluation panel's human-rating view, for jobs created with
// evaluationConfig.human. Lists the records to rate (GET /haniwa/v1/evaluation-jobs/{id}/ratings) and
// stores each person's rating (PUT /haniwa/v1/evaluation-jobs/{id}/ratings/{source}/{dataset}/{record}).
// ThumbsUpDown shows 👍/👎; IndividualLikertScale shows the points 1…5. When the last record is rated the
// job scores them (normalised to [0, 1]) and completes; onDone lets the panel refresh its list.

import { errMessage, h, tx } from '../common/dom.js';

const LIKERT = [1, 2, 3, 4, 5];

function choices(method) {
  if (method === 'ThumbsUpDown') return [['up', '👍'], ['down', '👎']];
  return LIKERT.map((n) => [String(n), String(n)]);
}

function item(ctx, jobId, metrics, rec, onRated) {
  const chosen = { ...(rec.ratings || {}) };
  const save = h('button', { class: 'btn btn-primary btn-small', type: 'button', testid: 'eval-rate-save' }, ctx.t('eval.rateSave'));
  const state = h('span', { class: 'muted small', testid: 'eval-rate-state' }, rec.rated ? ctx.t('eval.rated') : '');
  const groups = metrics.map((m) => {
    const buttons = choices(m.ratingMethod).map(([value, label]) => {
      const b = h('button', { class: 'btn btn-small', type: 'button', testid: 'eval-rate-choice',
        'aria-pressed': String(chosen[m.name] === value), dataset: { metric: m.name, value }, title: `${m.name}: ${value}` }, label);
      b.addEventListener('click', () => {
        chosen[m.name] = value;
        for (const x of b.parentElement.children) x.setAttribute('aria-pressed', String(x === b));
      });
      return b;
    });
    return h('div', { class: 'field' }, h('span', {}, m.name, m.description ? ` — ${m.description}` : ''),
      h('div', { class: 'eval-rate' }, ...buttons));
  });
  save.addEventListener('click', async () => {
    if (metrics.some((m) => !(m.name in chosen))) { ctx.toast(ctx.t('eval.rateAll'), 'error'); return; }
    save.disabled = true;
    try {
      const path = `/haniwa/v1/evaluation-jobs/${encodeURIComponent(jobId)}/ratings/`
        + `${encodeURIComponent(rec.source)}/${rec.dataset}/${rec.record}`;
      const res = await ctx.api.request('PUT', path, { ratings: chosen });
      state.textContent = ctx.t('eval.rated');
      onRated(res);
    } catch (e) {
      ctx.toast(errMessage(e), 'error');
    } finally {
      save.disabled = false;
    }
  });
  return h('div', { class: 'card eval-record', testid: 'eval-rate-item', dataset: { record: String(rec.record), source: rec.source } },
    h('div', { class: 'muted small' }, rec.source),
    h('pre', { class: 'eval-text', testid: 'eval-rate-prompt' }, rec.prompt || ''),
    h('pre', { class: 'eval-text', testid: 'eval-rate-response' }, rec.response || ''),
    rec.reference ? h('div', { class: 'muted small' }, `${ctx.t('eval.reference')}: ${rec.reference}`) : null,
    ...groups, h('div', { class: 'row' }, save, ' ', state));
}

export function ratingView(ctx, progress, onDone) {
  const box = h('div', { class: 'col', testid: 'eval-rating' });
  const count = h('p', { class: 'muted small', testid: 'eval-rate-count' });
  box.append(tx(ctx, 'h4', 'eval.rateTitle'), count);
  (async () => {
    let data;
    try {
      data = await ctx.api.request('GET', `/haniwa/v1/evaluation-jobs/${encodeURIComponent(progress.id)}/ratings`);
    } catch (e) {
      box.append(h('p', { class: 'usage-error' }, errMessage(e)));
      return;
    }
    const show = (rated, total) => { count.textContent = ctx.t('eval.rateCount', { rated, total }); };
    show(data.rated, data.total);
    for (const rec of data.records) {
      box.append(item(ctx, progress.id, data.metrics, rec, (res) => {
        show(res.rated, res.total);
        if (res.rated >= res.total) onDone();
      }));
    }
  })();
  return box;
}
