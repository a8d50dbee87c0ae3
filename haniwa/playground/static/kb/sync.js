// haniwa playground — syncing S3 data sources: StartIngestionJob per data source, then GetIngestionJob until
// it ends, drawn as a status badge, a progress bar (haniwa's `progress` extension gives it its 100%), the
// job's statistics and its failure reasons.
//
//   loadLatestJob(kbId, dsId, seq)   show the newest job (and follow it while it runs)
//   syncAll(kbId)                    start a job on every S3 data source
//   renderJob(kbId, dsId)            draw a data source's job (after a language switch too)

import { errMessage, h } from '../common/dom.js';
import { fmtDateTime } from '../common/format.js';
import { api, P, POLL_MS, S } from './state.js';
import { badgeClass, ctx, dsType, s3Paths, t, tx } from './util.js';

const STATS = [
  ['scanned', 'numberOfDocumentsScanned'],
  ['new', 'numberOfNewDocumentsIndexed'],
  ['modified', 'numberOfModifiedDocumentsIndexed'],
  ['deleted', 'numberOfDocumentsDeleted'],
  ['failed', 'numberOfDocumentsFailed'],
];

const JOB_DONE = new Set(['COMPLETE', 'FAILED', 'STOPPED']);

export async function loadLatestJob(kbId, dsId, seq) {
  try {
    const out = await api().request('POST', P.jobs(kbId, dsId), {
      sortBy: { attribute: 'STARTED_AT', order: 'DESCENDING' }, maxResults: 1,
    });
    let job = ((out && out.ingestionJobSummaries) || [])[0] || null;
    if (seq !== S.viewSeq) return;
    if (job && !JOB_DONE.has(job.status)) {
      pollJob(kbId, dsId, job.ingestionJobId);
    } else if (job) {
      // summaries carry no failure reasons
      job = (await api().request('GET', P.job(kbId, dsId, job.ingestionJobId))).ingestionJob;
    }
    if (seq !== S.viewSeq) return;
    if (job) S.jobs.set(dsId, job);
    else S.jobs.delete(dsId);
    renderJob(kbId, dsId);
  } catch (e) {
    S.ctx.toast(errMessage(e), 'error');
  }
  updateSyncButton();
}

function updateSyncButton() {
  const d = S.ui.detail;
  if (!d || !d.sync.isConnected) return;
  const running = S.polls.size > 0;
  const detail = S.details.get(S.current);
  const s3 = detail ? detail.dataSources.filter((ds) => dsType(ds) === 'S3') : [];
  d.sync.disabled = running || !s3.length;
  d.sync.dataset.i18n = running ? 'kb.syncing' : 'kb.sync';
  d.sync.textContent = t(d.sync.dataset.i18n);
  d.sync.setAttribute('aria-busy', running ? 'true' : 'false');
}

export async function syncAll(kbId) {
  const detail = S.details.get(kbId);
  if (!detail) return;
  const seq = S.viewSeq;
  const s3 = detail.dataSources.filter((ds) => dsType(ds) === 'S3');
  S.ui.detail.sync.disabled = true;
  await Promise.all(s3.map(async (ds) => {
    const dsId = ds.dataSourceId;
    try {
      const out = await api().request('PUT', P.jobs(kbId, dsId), {});
      if (seq !== S.viewSeq) return;
      S.jobs.set(dsId, out.ingestionJob);
      renderJob(kbId, dsId);
      pollJob(kbId, dsId, out.ingestionJob.ingestionJobId);
    } catch (e) {
      S.ctx.toast(t('kb.syncFailed', { message: errMessage(e) }), 'error');
    }
  }));
  updateSyncButton();
}

function pollJob(kbId, dsId, jobId) {
  clearTimeout(S.polls.get(dsId));
  const seq = S.viewSeq;
  const tick = async () => {
    if (seq !== S.viewSeq || S.el.hidden) {
      S.polls.delete(dsId);   // left the view: show() picks the job up again from ListIngestionJobs
      return;
    }
    let job;
    try {
      job = (await api().request('GET', P.job(kbId, dsId, jobId))).ingestionJob;
    } catch (e) {
      S.polls.delete(dsId);
      S.ctx.toast(errMessage(e), 'error');
      updateSyncButton();
      return;
    }
    if (seq !== S.viewSeq) return;
    S.jobs.set(dsId, job);
    renderJob(kbId, dsId);
    if (JOB_DONE.has(job.status)) {
      S.polls.delete(dsId);
      updateSyncButton();
      const st = statsOf(job);
      if (job.status === 'COMPLETE') S.ctx.toast(t('kb.syncDone', st), st.failed ? 'error' : 'ok');
      else S.ctx.toast(t('kb.syncFailed', { message: (job.failureReasons || [job.status]).join('; ') }), 'error');
      return;
    }
    S.polls.set(dsId, setTimeout(tick, POLL_MS));
  };
  S.polls.set(dsId, setTimeout(tick, POLL_MS));
  updateSyncButton();
}

function statsOf(job) {
  const s = (job && job.statistics) || {};
  const out = {};
  for (const [key, wire] of STATS) out[key] = Number(s[wire] || 0);
  return out;
}

// progress in percent: scanned / listed from haniwa's extension; 100 only once the job is COMPLETE
function progressOf(job) {
  const p = job.progress || {};
  const listed = typeof p.documentsListed === 'number' ? p.documentsListed : null;
  const scanned = typeof p.documentsScanned === 'number' ? p.documentsScanned : statsOf(job).scanned;
  if (job.status === 'COMPLETE') return { pct: 100, listed, scanned };
  if (!listed) return { pct: 0, listed, scanned };
  return { pct: Math.min(99, Math.floor((scanned / listed) * 100)), listed, scanned };
}

function progressLabel(job, pr) {
  if (job.status === 'COMPLETE') return t('kb.progress.complete', { scanned: pr.scanned });
  if (job.status === 'FAILED' || job.status === 'STOPPED') return t('kb.progress.ended', { pct: pr.pct, status: job.status });
  if (pr.listed === null) return t('kb.progress.listing');
  return t('kb.progress.count', { pct: pr.pct, scanned: pr.scanned, listed: pr.listed });
}

export function renderJob(kbId, dsId) {
  if (S.current !== kbId) return;
  const box = S.ui.main.querySelector(`[data-job-for="${CSS.escape(dsId)}"]`);
  if (!box) return;
  const job = S.jobs.get(dsId);
  if (!job) {
    box.replaceChildren(tx('p', 'kb.neverSynced', { class: 'kb-callout small', testid: 'kb-never-synced' }));
    return;
  }
  const pr = progressOf(job);
  const label = progressLabel(job, pr);
  const running = !JOB_DONE.has(job.status);
  // keep the bar element across updates so its width animates
  let bar = box.querySelector('[data-testid="kb-progress"]');
  if (!bar) {
    box.replaceChildren();
    const statusEl = h('span', { testid: 'kb-status' });
    const labelEl = h('span', { class: 'mono small', testid: 'kb-progress-label', 'aria-live': 'polite' });
    const started = h('span', { class: 'muted small kb-started' });
    bar = h('div', { class: 'progress kb-progress', testid: 'kb-progress', role: 'progressbar',
      'aria-valuemin': '0', 'aria-valuemax': '100' }, h('div', { class: 'bar' }));
    const stats = h('div', { class: 'metrics kb-stats', testid: 'kb-stats' }, STATS.map(([key]) =>
      h('div', { class: 'metric inline', 'data-stat': key },
        tx('span', `kb.stat.${key}`, { class: 'label' }),
        h('span', { class: 'value', testid: `kb-stat-${key}` }))));
    const failures = h('div', { class: 'kb-failures', testid: 'kb-failures', role: 'alert', hidden: true });
    const empty = h('p', { class: 'kb-callout small', testid: 'kb-empty-source', hidden: true });
    box.append(h('div', { class: 'row' }, statusEl, labelEl, h('span', { class: 'spacer' }), started), bar, stats,
      empty, failures);
  }
  const statusEl = box.querySelector('[data-testid="kb-status"]');
  statusEl.className = badgeClass(job.status);
  statusEl.textContent = job.status;
  statusEl.dataset.status = job.status;
  box.querySelector('[data-testid="kb-progress-label"]').textContent = label;
  box.querySelector('.kb-started').textContent = t('kb.jobStarted', { time: fmtDateTime(job.startedAt, ctx().lang()) });
  bar.setAttribute('aria-valuenow', String(pr.pct));
  bar.setAttribute('aria-valuetext', label);
  bar.dataset.status = job.status;
  bar.classList.toggle('indeterminate', running && pr.listed === null);
  bar.querySelector('.bar').style.width = `${pr.pct}%`;
  const st = statsOf(job);
  for (const [key] of STATS) {
    const v = box.querySelector(`[data-testid="kb-stat-${key}"]`);
    v.textContent = String(st[key]);
    v.dataset.value = String(st[key]);
  }
  // an empty listing is not an error (S3 neither), but it is rarely what was meant
  const ds = (S.details.get(kbId) || { dataSources: [] }).dataSources.find((x) => x.dataSourceId === dsId);
  const empty = box.querySelector('[data-testid="kb-empty-source"]');
  empty.hidden = !(job.status === 'COMPLETE' && job.progress && job.progress.documentsListed === 0 && ds);
  if (!empty.hidden) {
    const paths = s3Paths(ds);
    empty.textContent = t('kb.emptySource', {
      uri: paths.map((p) => `s3://${p}`).join(', '), path: paths.join(', $HANIWA_S3_ROOT/'),
    });
  }
  const failures = box.querySelector('[data-testid="kb-failures"]');
  const reasons = job.failureReasons || [];
  failures.hidden = !reasons.length;
  failures.replaceChildren(...(reasons.length ? [
    tx('div', 'kb.failures', { class: 'section-title' }),
    h('ul', {}, reasons.map((r) => h('li', { testid: 'kb-failure', text: r }))),
  ] : []));
}
