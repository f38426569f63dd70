// A burst: PODS pods arrive at once (one VU each, one iteration). Each goes filter → prioritize
// (only the nodes filter kept, as kube-scheduler does) → bind to the best-scoring node.
// Reports how long until every pod is bound (`bound_after` max), per-pod end-to-end time, and
// bind successes / failures.
//
// All pods are filtered at once, against the same state, so several pick the same best node and
// the later binds find it full: the extender refuses them (200 with an Error). As kube-scheduler
// requeues such a pod, the VU starts over (filter → prioritize → bind, with the fresh state) up
// to ATTEMPTS times (default 5) after RETRY_BACKOFF seconds × attempt (default 0.05; the real
// scheduler backs off 1 s, 2 s, ...). `bind_refused` counts those refusals; `bind_errors` the
// pods still not bound after every attempt, and HTTP failures.
//
// Needs the extender's /bind backed by an API server (stand-in) that holds the pending pods:
// `python -m loadtest.generate payloads ... -o DIR` writes them to DIR/pending.json; the runner
// creates them before this script runs (see loadtest/run.py, --apiserver-cmd).
//
//   k6 run -e PAYLOADS=/abs/payload-dir -e BASE_URL=http://127.0.0.1:8888 -e PODS=100 \
//          -e SUMMARY=/tmp/burst.json loadtest/k6/burst.js
import http from 'k6/http';
import { check, sleep } from 'k6';
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
const ATTEMPTS = Math.max(1, parseInt(__ENV.ATTEMPTS || '5', 10));
const BACKOFF = parseFloat(__ENV.RETRY_BACKOFF || '0.05');

const boundAfter = new Trend('bound_after', true); // ms from the burst's start to this pod's bind reply
const podE2E = new Trend('pod_e2e', true); // filter + prioritize + bind, this pod
const bindsOk = new Counter('binds_ok');
const bindErrors = new Counter('bind_errors'); // not bound after every attempt, or non-200
const bindRefused = new Counter('bind_refused'); // 200 with an Error (node full meanwhile): retried
const unschedulable = new Counter('unschedulable'); // filter kept no node
const attemptsTaken = new Trend('bind_attempts'); // attempts per bound pod

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
    bind_attempts: ['max>=0'],
    'http_req_duration{verb:filter}': ['max>=0'],
    'http_req_duration{verb:prioritize}': ['max>=0'],
    'http_req_duration{verb:bind}': ['max>=0'],
  },
  summaryTrendStats: TREND_STATS,
};

export default async function () {
  const idx = exec.vu.idInTest - 1;
  const body = text(await bodies.get(idx));
  const bindArgs = JSON.parse(text(await binds.get(idx)));
  for (const c of [bindsOk, bindErrors, bindRefused, unschedulable]) c.add(0);
  let e2e = 0;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (attempt > 1) sleep(BACKOFF * (attempt - 1));
    const fr = http.post(`${BASE}/filter`, body, { headers: HEADERS, tags: { verb: 'filter' }, timeout: TIMEOUT });
    const freply = fr.status === 200 ? safeJson(fr) : undefined;
    const kept = filterKept(freply, FULL);
    check(fr, {
      'filter: status 200': (r) => r.status === 200,
      'filter: ExtenderFilterResult shape': () => kept !== null,
      'filter: Error empty': () => !!freply && !freply.Error,
    });
    e2e += fr.timings.duration;
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
    e2e += pr.timings.duration;
    // kube-scheduler adds score × weight to its own plugins' scores; alone, the best is the max.
    let best = kept[0];
    let top = -1;
    for (const h of Array.isArray(hp) ? hp : []) {
      if (h.Score > top) {
        top = h.Score;
        best = h.Host;
      }
    }

    bindArgs.Node = best;
    const br = http.post(`${BASE}/bind`, JSON.stringify(bindArgs), { headers: HEADERS, tags: { verb: 'bind' }, timeout: TIMEOUT });
    const breply = br.status === 200 ? safeJson(br) : undefined;
    e2e += br.timings.duration;
    check(br, { 'bind: status 200': (r) => r.status === 200 });
    if (br.status === 200 && !!breply && !breply.Error) {
      bindsOk.add(1);
      attemptsTaken.add(attempt);
      boundAfter.add(Date.now() - exec.scenario.startTime);
      podE2E.add(e2e);
      return;
    }
    if (br.status !== 200 || !breply) break; // an HTTP failure is not retried
    bindRefused.add(1);
  }
  bindErrors.add(1);
}

export function handleSummary(data) {
  return summaryOutputs(data, `burst: ${PODS} pods at once → ${BASE}`, [
    'bound_after',
    'pod_e2e',
    'http_req_duration{verb:filter}',
    'http_req_duration{verb:prioritize}',
    'http_req_duration{verb:bind}',
    'binds_ok',
    'bind_refused',
    'bind_errors',
    'bind_attempts',
    'unschedulable',
    'http_req_failed',
    'checks',
  ]);
}
