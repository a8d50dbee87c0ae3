// haniwa playground — the Knowledge-bases panel's state and the bedrock-agent reads its modules share.
//
//   S                       the panel's state (one object: every module reads and updates it)
//   P                       bedrock-agent REST paths
//   POLL_MS                 how often running ingestion jobs and documents are polled
//   api()                   the shell's api module
//   listAll(path, key)      every page of a bedrock-agent List* operation (POST, maxResults / nextToken)
//   loadDetail(kbId)        GetKnowledgeBase + its data sources, kept in S.details

import { ctx } from './util.js';

export const enc = encodeURIComponent;

export const P = {
  kbs: '/knowledgebases/',
  kb: (kb) => `/knowledgebases/${enc(kb)}`,
  dss: (kb) => `/knowledgebases/${enc(kb)}/datasources/`,
  ds: (kb, ds) => `/knowledgebases/${enc(kb)}/datasources/${enc(ds)}`,
  jobs: (kb, ds) => `${P.ds(kb, ds)}/ingestionjobs/`,
  job: (kb, ds, job) => `${P.ds(kb, ds)}/ingestionjobs/${enc(job)}`,
  docs: (kb, ds) => `${P.ds(kb, ds)}/documents`,
  models: '/foundation-models',
};

export const POLL_MS = 300;

export const S = {
  ctx: null,
  el: null,
  ui: {},
  embeddingModels: [],
  textModels: [],
  kbs: [],                 // ListKnowledgeBases summaries
  details: new Map(),      // kbId → {kb, dataSources: [full data source]}
  current: null,           // the open knowledge base id (null: the create form)
  viewSeq: 0,              // bumped whenever the main view changes; stale async work checks it
  polls: new Map(),        // dsId → timeout id of its ingestion-job poll
  jobs: new Map(),         // dsId → last ingestion job seen
  uploads: new Map(),      // dsId → [{id, name, size, file, status, reason}] (local upload progress)
  docs: new Map(),         // dsId → [document details] from ListKnowledgeBaseDocuments
  docPolls: new Map(),     // dsId → timeout id
  files: [],               // files picked in the create form
};

export function api() {
  return ctx().api;
}

export async function listAll(path, key) {
  const items = [];
  let token = null;
  for (let i = 0; i < 50; i++) {
    const body = { maxResults: 100 };
    if (token) body.nextToken = token;
    const out = await api().request('POST', path, body);
    items.push(...((out && out[key]) || []));
    token = out && out.nextToken;
    if (!token) break;
  }
  return items;
}

export async function loadDetail(kbId) {
  const [kbOut, summaries] = await Promise.all([
    api().request('GET', P.kb(kbId)),
    listAll(P.dss(kbId), 'dataSourceSummaries'),
  ]);
  const dataSources = await Promise.all(summaries.map((s) =>
    api().request('GET', P.ds(kbId, s.dataSourceId)).then((o) => o.dataSource)));
  const detail = { kb: kbOut.knowledgeBase, dataSources };
  S.details.set(kbId, detail);
  return detail;
}
