// Shared helpers for the k6 scripts (k6 v1 API). Loopback targets only by default.
import { SharedArray } from 'k6/data';
import { open as fsOpen, SeekMode } from 'k6/experimental/fs';

export const HEADERS = {
  // what kube-scheduler's extender client sends (tests/fixtures/kube-scheduler/*.json)
  'Content-Type': 'application/json',
  'Accept-Encoding': 'gzip',
  'User-Agent': 'Go-http-client/1.1',
};
// kube-scheduler's default extender httpTimeout: a slower answer fails the scheduling attempt.
export const TIMEOUT = __ENV.HTTP_TIMEOUT || '5s';
export const TREND_STATS = ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'];

export function baseUrls() {
  const raw = __ENV.BASE_URLS || __ENV.BASE_URL || 'http://127.0.0.1:8888';
  return raw
    .split(',')
    .map((u) => u.trim().replace(/\/+$/, ''))
    .filter((u) => u.length > 0);
}

// PAYLOADS is a directory written by `python -m loadtest.generate payloads -o DIR`
// (filter.jsonl + filter.idx.json, bind.jsonl + bind.idx.json, meta.json) or a bodies file
// (.jsonl with its .idx.json, or a .json array). Use absolute paths: k6 resolves relative ones
// against the script's folder.
function payloads() {
  const p = __ENV.PAYLOADS;
  if (!p) {
    throw new Error('set PAYLOADS to a payload directory or bodies file (python -m loadtest.generate payloads ...)');
  }
  return p.replace(/\/+$/, '');
}

export function isBodiesFile() {
  const p = payloads();
  return p.endsWith('.jsonl') || p.endsWith('.json');
}

export function payloadFile(name) {
  const p = payloads();
  if (isBodiesFile()) {
    if (name !== 'filter') throw new Error(`${name}.jsonl needs PAYLOADS to be a payload directory`);
    return p;
  }
  return `${p}/${name}.jsonl`;
}

export function loadMeta() {
  if (isBodiesFile()) return {};
  try {
    return JSON.parse(open(`${payloads()}/meta.json`));
  } catch (e) {
    return {};
  }
}

// Request bodies, read as bytes from one copy of the file that all VUs share
// (k6/experimental/fs) at the offsets of NAME.idx.json. Nothing is parsed or re-encoded per
// request: k6 stays far below the server's CPU use, which matters on a 2-core machine.
// Without an index (a .json array, a hand-made .jsonl) it falls back to a SharedArray of
// strings, which re-parses an element on every access: several ms of k6 CPU per 8 KB body.
export async function openBodies(name) {
  const path = payloadFile(name);
  let index = null;
  if (path.endsWith('.jsonl')) {
    try {
      index = JSON.parse(open(path.replace(/\.jsonl$/, '.idx.json')));
    } catch (e) {
      index = null;
    }
  }
  if (index) {
    const file = await fsOpen(path);
    return {
      count: index.length,
      async get(i) {
        const [off, len] = index[i % index.length];
        const buf = new Uint8Array(len);
        await file.seek(off, SeekMode.Start);
        let got = 0;
        while (got < len) {
          const n = await file.read(buf.subarray(got));
          if (n === null) break;
          got += n;
        }
        if (got !== len) throw new Error(`${path}: short read at body ${i}`);
        return buf;
      },
    };
  }
  const arr = new SharedArray(name, function () {
    const text = open(path);
    if (path.endsWith('.json')) return JSON.parse(text).map((b) => JSON.stringify(b));
    return text.split('\n').filter((l) => l.length > 0);
  });
  return {
    count: arr.length,
    async get(i) {
      return arr[i % arr.length];
    },
  };
}

// What to hand http.post: the bytes as they are.
export function wire(body) {
  return typeof body === 'string' ? body : body.buffer;
}

// The body as a JS string (bodies are ASCII JSON); for the sampled deep checks and for
// building a prioritize body from a filter reply.
export function text(body) {
  if (typeof body === 'string') return body;
  const parts = [];
  for (let i = 0; i < body.length; i += 8192) {
    parts.push(String.fromCharCode.apply(null, body.subarray(i, i + 8192)));
  }
  return parts.join('');
}

const FULL_TAIL = '"NodeNames":null}';
export function isFullMode(body) {
  if (typeof body === 'string') return body.endsWith(FULL_TAIL);
  return text(body.subarray(body.length - FULL_TAIL.length)) === FULL_TAIL;
}

// The node names a request body offers (parses the body: use on sampled iterations only).
export function requestNames(body) {
  const args = JSON.parse(body);
  if (args.NodeNames) return args.NodeNames;
  return ((args.Nodes && args.Nodes.items) || []).map((n) => n.metadata.name);
}

// Names a filter reply keeps, or null if the reply is not an ExtenderFilterResult.
export function filterKept(reply, full) {
  if (reply === null || typeof reply !== 'object' || Array.isArray(reply)) return null;
  if (typeof reply.Error !== 'string' && reply.Error !== undefined && reply.Error !== null) return null;
  for (const k of ['FailedNodes', 'FailedAndUnresolvableNodes']) {
    const v = reply[k];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v))) return null;
  }
  if (full) {
    if (reply.NodeNames !== undefined && reply.NodeNames !== null) return null;
    if (reply.Nodes === null || reply.Nodes === undefined) return [];
    if (!Array.isArray(reply.Nodes.items)) return null;
    const names = [];
    for (const n of reply.Nodes.items) {
      if (!n || !n.metadata || typeof n.metadata.name !== 'string') return null;
      names.push(n.metadata.name);
    }
    return names;
  }
  if (reply.NodeNames === null || reply.NodeNames === undefined) return [];
  if (!Array.isArray(reply.NodeNames)) return null;
  for (const n of reply.NodeNames) if (typeof n !== 'string') return null;
  return reply.NodeNames;
}

// HostPriorityList: [{Host, Score}] with integer scores 0..10 (MaxExtenderPriority).
export function priorityShapeOk(reply) {
  if (!Array.isArray(reply)) return false;
  for (const hp of reply) {
    if (!hp || typeof hp.Host !== 'string') return false;
    if (!Number.isInteger(hp.Score) || hp.Score < 0 || hp.Score > 10) return false;
  }
  return true;
}

export function subsetOf(names, offered) {
  const set = new Set(offered);
  for (const n of names) if (!set.has(n)) return false;
  return true;
}

export function safeJson(res) {
  try {
    return JSON.parse(res.body);
  } catch (e) {
    return undefined;
  }
}

// Rebuild a request body for prioritize from its filter body and the kept nodes, the way
// kube-scheduler sends only the nodes that passed filtering.
export function prioritizeBody(filterBody, full, reply) {
  if (full) {
    const cut = filterBody.indexOf(',"Nodes":{');
    return filterBody.slice(0, cut) + ',"Nodes":' + JSON.stringify(reply.Nodes) + ',"NodeNames":null}';
  }
  const cut = filterBody.lastIndexOf(',"NodeNames":');
  return filterBody.slice(0, cut) + ',"NodeNames":' + JSON.stringify(reply.NodeNames || []) + '}';
}

function fmt(v) {
  if (v === undefined || v === null) return '-';
  if (typeof v !== 'number') return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
}

// handleSummary helper: the full JSON to $SUMMARY (if set) and a short table on stdout.
export function summaryOutputs(data, title, names) {
  const out = {};
  if (__ENV.SUMMARY) out[__ENV.SUMMARY] = JSON.stringify(data, null, 1);
  const lines = [`\n${title}`];
  for (const name of names) {
    const m = data.metrics[name];
    if (!m) continue;
    const v = m.values;
    if (m.type === 'trend') {
      lines.push(
        `  ${name.padEnd(36)} med ${fmt(v.med)}  p95 ${fmt(v['p(95)'])}  p99 ${fmt(v['p(99)'])}  max ${fmt(v.max)}  n ${fmt(v.count)}`,
      );
    } else if (m.type === 'rate') {
      lines.push(`  ${name.padEnd(36)} ${(100 * v.rate).toFixed(2)}%  (${v.passes} of ${v.passes + v.fails})`);
    } else if (m.type === 'gauge') {
      lines.push(`  ${name.padEnd(36)} ${fmt(v.value)}`);
    } else {
      lines.push(`  ${name.padEnd(36)} ${fmt(v.count)}  (${fmt(v.rate)}/s)`);
    }
  }
  for (const [name, m] of Object.entries(data.metrics)) {
    for (const [t, r] of Object.entries(m.thresholds || {})) {
      if (!r.ok) lines.push(`  THRESHOLD CROSSED: ${name} ${t}`);
    }
  }
  out.stdout = lines.join('\n') + '\n';
  return out;
}
