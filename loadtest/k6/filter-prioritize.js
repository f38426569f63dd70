// kube-scheduler's extender traffic: for each pod, POST /filter then POST /prioritize, at a
// constant arrival rate of pairs, each pair a different generated pod and candidate window.
//
//   k6 run -e PAYLOADS=/abs/path/payloads-dir -e BASE_URL=http://127.0.0.1:8888 \
//          -e RATE=150 -e DURATION=15s -e SUMMARY=/tmp/summary.json loadtest/k6/filter-prioritize.js
//
// Env:
//   BASE_URL      extender base URL (default http://127.0.0.1:8888)
//   PAYLOADS      payload dir (filter.jsonl) or bodies file (.jsonl / .json array); absolute path
//   RATE          filter+prioritize pairs per second (default 150)
//   DURATION      how long to keep the rate (default 15s)
//   PRIORITIZE    same (default): prioritize gets the filter body, identical load for every server;
//                 filtered: only the nodes the filter reply kept, as kube-scheduler does
//   CHECK_EVERY   parse and fully check one pair in N (default: body bytes / 750, within 20..100):
//                 reply shapes, Error empty, scores 0..10, and every returned name was offered
//                 (kube-scheduler rejects a reply naming another node). The other pairs check
//                 status and content type only and leave the reply as bytes: goja's JSON.parse
//                 is slow enough (~1.4 cores at 150 pairs/s of 500 names) to starve the server.
//                 The first pair is always checked in full.
//   PRE_VUS, MAX_VUS   VU pool of the arrival-rate executor (default 30, 30: no VU is created
//                 mid-run; when all are busy k6 drops iterations and reports dropped_iterations)
//   SUMMARY       write handleSummary's JSON here
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Trend } from 'k6/metrics';
import {
  HEADERS,
  TIMEOUT,
  TREND_STATS,
  baseUrls,
  filterKept,
  isFullMode,
  loadMeta,
  openBodies,
  prioritizeBody,
  priorityShapeOk,
  requestNames,
  safeJson,
  subsetOf,
  summaryOutputs,
  text,
  wire,
} from './lib.js';

const BASE = baseUrls()[0];
const RATE = parseInt(__ENV.RATE || '150', 10);
const DURATION = __ENV.DURATION || '15s';
const PRIORITIZE = __ENV.PRIORITIZE || 'same';
const bodies = await openBodies('filter');
const meta = loadMeta();
const FULL = meta.mode ? meta.mode === 'full' : isFullMode(await bodies.get(0));
const BODY_BYTES = (meta.body_bytes && meta.body_bytes.median) || (await bodies.get(0)).length;
// goja parses JSON at ~25 MB/s: sample the deep checks more sparsely for big bodies
const CHECK_EVERY = parseInt(__ENV.CHECK_EVERY || String(Math.min(100, Math.max(20, Math.round(BODY_BYTES / 750)))), 10);
const K = meta.candidates || Infinity;

const pairDuration = new Trend('pair_duration', true);

export const options = {
  scenarios: {
    pairs: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: parseInt(__ENV.PRE_VUS || '30', 10),
      maxVUs: parseInt(__ENV.MAX_VUS || __ENV.PRE_VUS || '30', 10),
      gracefulStop: '10s',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    'checks{depth:deep}': ['rate>0.99'],
    // always true: makes the per-verb submetrics appear in the summary
    'http_req_duration{verb:filter}': ['max>=0'],
    'http_req_duration{verb:prioritize}': ['max>=0'],
  },
  summaryTrendStats: TREND_STATS,
};

export default async function () {
  const i = exec.scenario.iterationInTest;
  const body = await bodies.get(i);
  const deep = i % CHECK_EVERY === 0;
  // light iterations leave the reply as bytes (no JS string): k6 must stay cheap beside the server
  const params = (verb) => ({
    headers: HEADERS,
    tags: { verb },
    timeout: TIMEOUT,
    responseType: deep || PRIORITIZE === 'filtered' ? 'text' : 'none',
  });

  const fr = http.post(`${BASE}/filter`, wire(body), params('filter'));
  check(fr, {
    'filter: status 200': (r) => r.status === 200,
    'filter: JSON reply': (r) => /json/.test(r.headers['Content-Type'] || ''),
  });
  let reply = null;
  let kept = null;
  if (deep || PRIORITIZE === 'filtered') {
    reply = fr.status === 200 ? safeJson(fr) : undefined;
    kept = filterKept(reply, FULL);
  }
  let offered = null;
  if (deep) {
    offered = requestNames(text(body));
    check(
      fr,
      {
        'filter: ExtenderFilterResult shape': () => kept !== null,
        'filter: Error empty': () => !!reply && !reply.Error,
        'filter: only offered nodes, at most K': () =>
          kept !== null && kept.length <= K && subsetOf(kept, offered),
      },
      { depth: 'deep' },
    );
  }

  let pbody = wire(body);
  if (PRIORITIZE === 'filtered' && kept !== null && reply) pbody = prioritizeBody(text(body), FULL, reply);
  const pr = http.post(`${BASE}/prioritize`, pbody, params('prioritize'));
  check(pr, {
    'prioritize: status 200': (r) => r.status === 200,
    'prioritize: JSON reply': (r) => /json/.test(r.headers['Content-Type'] || ''),
  });
  if (deep) {
    const hp = pr.status === 200 ? safeJson(pr) : undefined;
    check(
      pr,
      {
        'prioritize: HostPriorityList shape, scores 0..10': () => priorityShapeOk(hp),
        'prioritize: only offered nodes': () =>
          Array.isArray(hp) && subsetOf(hp.map((h) => h.Host), offered),
      },
      { depth: 'deep' },
    );
  }
  pairDuration.add(fr.timings.duration + pr.timings.duration);
}

export function handleSummary(data) {
  return summaryOutputs(data, `filter-prioritize ${BASE} rate=${RATE}/s for ${DURATION}`, [
    'http_req_duration',
    'http_req_duration{verb:filter}',
    'http_req_duration{verb:prioritize}',
    'pair_duration',
    'http_reqs',
    'http_req_failed',
    'checks',
    'checks{depth:deep}',
    'dropped_iterations',
    'vus_max',
  ]);
}
