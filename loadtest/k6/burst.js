// A burst: PODS pods arrive at once (one VU each, one iteration). Each goes filter → prioritize
// (only the nodes filter kept, as kube-scheduler does) → bind to the best-scoring node.
// Reports how long until every pod is bound (`bound_after` max), per-pod end-to-end time, and
// bind successes / failures.
//
// Needs the extender's /bind backed by an API server (stand-in) that holds the pending pods:
// `python -m loadtest.generate payloads ... -o DIR` writes them to DIR/pending.json; the runner
// creates them before this script runs (see loadtest/run.py, --apiserver-cmd).
//
//   k6 run -e PAYLOADS=/abs/payload-dir -e BASE_URL=http://127.0.0.1:8888 -e PODS=100 \
//          -e SUMMARY=/tmp/burst.json loadtest/k6/burst.js
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import {
  HEADERS,
  TIMEOUT,
  TREND_STATS,
  baseUrls,
  filterKept,
  isFullMode,
  openBodies,
  prioritizeBody,
  priorityShapeOk,
  safeJson,
  subsetOf,
  summaryOutputs,
  text,
} from './lib.js';

const BASE = baseUrls()[0];
const bodies = await openBodies('filter');
const binds = await openBodies('bind');
const PODS = Math.min(parseInt(__ENV.PODS || '100', 10), bodies.count);
const FULL = isFullMode(await bodies.get(0));

const boundAfter = new Trend('bound_after', true); // ms from the burst's start to this pod's bind reply
const podE2E = new Trend('pod_e2e', true); // filter + prioritize + bind, this pod
const bindsOk = new Counter('binds_ok');
const bindErrors = new Counter('bind_errors'); // non-200 or a non-empty Error
const unschedulable = new Counter('unschedulable'); // filter kept no node

export const options = {
  scenarios: {
    burst: {
      executor: 'per-vu-iterations',
      vus: PODS,
      iterations: 1,
      maxDuration: __ENV.MAX_DURATION || '60s',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    bind_errors: ['count<1'],
    'http_req_duration{verb:filter}': ['max>=0'],
    'http_req_duration{verb:prioritize}': ['max>=0'],
    'http_req_duration{verb:bind}': ['max>=0'],
  },
  summaryTrendStats: TREND_STATS,
};

export default async function () {
  const idx = exec.vu.idInTest - 1;
  const body = text(await bodies.get(idx));
  bindsOk.add(0);
  bindErrors.add(0);
  unschedulable.add(0);

  const fr = http.post(`${BASE}/filter`, body, { headers: HEADERS, tags: { verb: 'filter' }, timeout: TIMEOUT });
  const freply = fr.status === 200 ? safeJson(fr) : undefined;
  const kept = filterKept(freply, FULL);
  check(fr, {
    'filter: status 200': (r) => r.status === 200,
    'filter: ExtenderFilterResult shape': () => kept !== null,
    'filter: Error empty': () => !!freply && !freply.Error,
  });
  if (!kept || kept.length === 0) {
    unschedulable.add(1);
    return;
  }

  const pbody = prioritizeBody(body, FULL, freply);
  const pr = http.post(`${BASE}/prioritize`, pbody, { headers: HEADERS, tags: { verb: 'prioritize' }, timeout: TIMEOUT });
  const hp = pr.status === 200 ? safeJson(pr) : undefined;
  check(pr, {
    'prioritize: status 200': (r) => r.status === 200,
    'prioritize: HostPriorityList shape, scores 0..10': () => priorityShapeOk(hp),
    'prioritize: only kept nodes': () => Array.isArray(hp) && subsetOf(hp.map((h) => h.Host), kept),
  });
  // kube-scheduler adds score × weight to its own plugins' scores; alone, the best is the max.
  let best = kept[0];
  let top = -1;
  for (const h of Array.isArray(hp) ? hp : []) {
    if (h.Score > top) {
      top = h.Score;
      best = h.Host;
    }
  }

  const args = JSON.parse(text(await binds.get(idx)));
  args.Node = best;
  const br = http.post(`${BASE}/bind`, JSON.stringify(args), { headers: HEADERS, tags: { verb: 'bind' }, timeout: TIMEOUT });
  const breply = br.status === 200 ? safeJson(br) : undefined;
  const ok = br.status === 200 && !!breply && !breply.Error;
  check(br, { 'bind: status 200': (r) => r.status === 200, 'bind: Error empty': () => ok });
  if (ok) bindsOk.add(1);
  else bindErrors.add(1, { status: String(br.status) });
  boundAfter.add(Date.now() - exec.scenario.startTime);
  podE2E.add(fr.timings.duration + pr.timings.duration + br.timings.duration);
}

export function handleSummary(data) {
  return summaryOutputs(data, `burst: ${PODS} pods at once → ${BASE}`, [
    'bound_after',
    'pod_e2e',
    'http_req_duration{verb:filter}',
    'http_req_duration{verb:prioritize}',
    'http_req_duration{verb:bind}',
    'binds_ok',
    'bind_errors',
    'unschedulable',
    'http_req_failed',
    'checks',
  ]);
}
