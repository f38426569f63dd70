// Bind contention: several extender replicas (BASE_URLS, comma-separated) share one API server
// and schedule many pods onto few nodes at once. VUs go round-robin across the replicas; each
// iteration takes the next pod: filter → prioritize (kept nodes only) → bind to the best score.
// Counts bind successes vs errors; the runner then checks in the API server that no node is
// over-committed (the whole point: replicas must not double-book capacity).
//
//   k6 run -e PAYLOADS=/abs/payload-dir \
//          -e BASE_URLS=http://127.0.0.1:8881,http://127.0.0.1:8882,http://127.0.0.1:8883 \
//          -e VUS=24 -e SUMMARY=/tmp/contention.json loadtest/k6/bind-contention.js
//
// Env: PODS (default: every body), VUS (default 24), MAX_DURATION (default 120s).
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
  summaryOutputs,
  text,
} from './lib.js';

const URLS = baseUrls();
const bodies = await openBodies('filter');
const binds = await openBodies('bind');
const PODS = Math.min(parseInt(__ENV.PODS || String(bodies.count), 10), bodies.count);
const VUS = Math.min(parseInt(__ENV.VUS || '24', 10), PODS);
const FULL = isFullMode(await bodies.get(0));

const bindsOk = new Counter('binds_ok');
const bindRefused = new Counter('bind_refused'); // 200 with a non-empty Error (e.g. lost a race)
const bindHttpErrors = new Counter('bind_http_errors'); // non-200, timeouts
const unschedulable = new Counter('unschedulable'); // filter kept no node
const bindDuration = new Trend('bind_duration', true);
const podE2E = new Trend('pod_e2e', true);

export const options = {
  scenarios: {
    contention: {
      executor: 'shared-iterations',
      vus: VUS,
      iterations: PODS,
      maxDuration: __ENV.MAX_DURATION || '120s',
    },
  },
  thresholds: {
    // filter/prioritize must not fail; bind refusals are expected once the few nodes are full
    'http_req_failed{verb:filter}': ['rate<0.01'],
    'http_req_failed{verb:prioritize}': ['rate<0.01'],
    checks: ['rate>0.99'],
    'http_req_duration{verb:filter}': ['max>=0'],
    'http_req_duration{verb:prioritize}': ['max>=0'],
    'http_req_duration{verb:bind}': ['max>=0'],
  },
  summaryTrendStats: TREND_STATS,
};

export default async function () {
  const idx = exec.scenario.iterationInTest;
  const base = URLS[(exec.vu.idInTest - 1) % URLS.length];
  const replica = { replica: String((exec.vu.idInTest - 1) % URLS.length) };
  const body = text(await bodies.get(idx));
  for (const c of [bindsOk, bindRefused, bindHttpErrors, unschedulable]) c.add(0);

  const fr = http.post(`${base}/filter`, body, { headers: HEADERS, tags: { verb: 'filter', ...replica }, timeout: TIMEOUT });
  const freply = fr.status === 200 ? safeJson(fr) : undefined;
  const kept = filterKept(freply, FULL);
  check(fr, {
    'filter: status 200': (r) => r.status === 200,
    'filter: ExtenderFilterResult shape': () => kept !== null,
  });
  if (!kept || kept.length === 0) {
    unschedulable.add(1, replica);
    return;
  }
  const pr = http.post(`${base}/prioritize`, prioritizeBody(body, FULL, freply), {
    headers: HEADERS,
    tags: { verb: 'prioritize', ...replica },
    timeout: TIMEOUT,
  });
  const hp = pr.status === 200 ? safeJson(pr) : undefined;
  check(pr, {
    'prioritize: status 200': (r) => r.status === 200,
    'prioritize: HostPriorityList shape, scores 0..10': () => priorityShapeOk(hp),
  });
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
  const br = http.post(`${base}/bind`, JSON.stringify(args), {
    headers: HEADERS,
    tags: { verb: 'bind', ...replica },
    timeout: TIMEOUT,
    responseCallback: http.expectedStatuses(200),
  });
  bindDuration.add(br.timings.duration, replica);
  podE2E.add(fr.timings.duration + pr.timings.duration + br.timings.duration);
  if (br.status !== 200) {
    bindHttpErrors.add(1, { ...replica, status: String(br.status) });
    return;
  }
  const breply = safeJson(br);
  check(br, { 'bind: BindingResult shape': () => !!breply && (breply.Error === undefined || typeof breply.Error === 'string' || breply.Error === null) });
  if (breply && !breply.Error) bindsOk.add(1, replica);
  else bindRefused.add(1, replica);
}

export function handleSummary(data) {
  return summaryOutputs(data, `bind-contention: ${PODS} pods, ${VUS} VUs over ${URLS.length} replica(s)`, [
    'binds_ok',
    'bind_refused',
    'bind_http_errors',
    'unschedulable',
    'bind_duration',
    'pod_e2e',
    'http_req_duration{verb:filter}',
    'http_req_duration{verb:prioritize}',
    'http_req_duration{verb:bind}',
    'checks',
  ]);
}
