// The benchmark's baseline: the Redis-streams webhook worker a competent
// engineer would write in an afternoon instead of running hookq. hookq's
// numbers are printed as ratios to this one, so it is kept honest and plain:
// no tuning hookq would have to beat unfairly, no handicap that would flatter
// it. Node 20, no npm packages (the benchmark has no install step), so the
// Redis client is a small RESP2 one written here.
//
//   node bench/baseline/worker.mjs --redis HOST:PORT --prefix P --inflight N
//        --endpoint-concurrency C [--ca-file PEM] [--consumer NAME]
//
// What it does NOT do, on purpose (a first version would not; hookq does):
// no retries (a failure is counted and the entry ACKed anyway), no attempt
// records or dead letters, no fencing or reclaiming of other consumers'
// pending entries, no endpoint cache refresh, no msgpack form, no fan-out to
// subscribers (entries without an `endpoint` field are skipped), no SSRF guard.
// So it does less Redis work per delivery than hookq, by design.
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';

const USAGE = 'usage: node worker.mjs --redis HOST:PORT --prefix P --inflight N ' +
  '--endpoint-concurrency C [--ca-file PEM] [--consumer NAME]';

// Bad options: one line on stderr, exit 2 (the driver shows it as is).
function usage(msg) {
  process.stderr.write(`baseline: ${msg} (--help for usage)\n`);
  process.exit(2);
}

// ---- Options ---------------------------------------------------------------

function parseArgs(argv) {
  const o = { consumer: `baseline-${process.pid}` };
  const names = {
    '--redis': 'redis', '--prefix': 'prefix', '--inflight': 'inflight',
    '--endpoint-concurrency': 'concurrency', '--ca-file': 'caFile', '--consumer': 'consumer',
  };
  if (argv.includes('--help')) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key) usage(`unknown option '${argv[i]}'`);
    if (i + 1 >= argv.length || argv[i + 1] === '') usage(`${argv[i]} needs a value`);
    o[key] = argv[i + 1];
  }
  for (const req of ['redis', 'prefix', 'inflight', 'concurrency'])
    if (o[req] === undefined) usage(`--${req === 'concurrency' ? 'endpoint-concurrency' : req} is required`);
  const m = /^([^:]+):(\d+)$/.exec(o.redis);
  if (!m || +m[2] < 1 || +m[2] > 65535) usage(`--redis: '${o.redis}' is not HOST:PORT`);
  o.host = m[1];
  o.port = +m[2];
  for (const [key, flag] of [['inflight', '--inflight'], ['concurrency', '--endpoint-concurrency']]) {
    if (!/^\d+$/.test(o[key]) || +o[key] < 1) usage(`${flag}: '${o[key]}' is not a positive integer`);
    o[key] = +o[key];
  }
  if (o.caFile !== undefined) {
    try {
      o.ca = fs.readFileSync(o.caFile);
    } catch (e) {
      usage(`--ca-file: ${e.message}`);
    }
  }
  return o;
}

// ---- A minimal RESP2 client --------------------------------------------------
// Pipelined: every call writes its command at once and pushes its resolver on
// a FIFO; replies come back in order, so each parsed reply resolves the oldest
// waiter. Bulk strings are returned as Buffers (payloads are bytes, sent as
// they are); simple strings as strings, errors as Error objects.

const INCOMPLETE = Symbol('incomplete');
const CRLF = Buffer.from('\r\n');

class Redis {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.waiters = [];
    this.buf = Buffer.alloc(0);
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.sock = net.createConnection({ host: this.host, port: this.port });
      this.sock.setNoDelay(true);
      this.sock.once('error', reject);
      this.sock.once('connect', () => {
        this.connected = true;
        this.sock.removeListener('error', reject);
        this.sock.on('error', () => {}); // 'close' follows and reports it
        resolve();
      });
      this.sock.on('data', (chunk) => this.onData(chunk));
      // A lost connection is fatal: a simple worker exits and lets its
      // supervisor restart it (unACKed entries stay pending in the group).
      this.sock.on('close', () => { if (this.connected && !this.closing) this.onLost(); });
    });
  }

  call(...args) {
    const parts = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(Buffer.from(`$${b.length}\r\n`), b, CRLF);
    }
    this.sock.write(Buffer.concat(parts));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close() {
    this.closing = true;
    this.sock.destroy();
  }

  onData(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = 0;
    // A large reply (an XREADGROUP of 256 KiB payloads) spans several chunks;
    // an incomplete one is simply parsed again from its start next time.
    while (pos < this.buf.length) {
      const r = this.parse(pos);
      if (r === INCOMPLETE) break;
      pos = r.end;
      const w = this.waiters.shift();
      if (r.value instanceof Error) w.reject(r.value);
      else w.resolve(r.value);
    }
    this.buf = this.buf.subarray(pos);
  }

  // Parses one reply at pos: { value, end } or INCOMPLETE.
  parse(pos) {
    const buf = this.buf;
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return INCOMPLETE;
    const type = buf[pos];
    const line = buf.toString('latin1', pos + 1, eol);
    const next = eol + 2;
    switch (type) {
      case 0x2b: return { value: line, end: next }; // + simple string
      case 0x2d: return { value: new Error(line), end: next }; // - error
      case 0x3a: return { value: Number(line), end: next }; // : integer
      case 0x24: { // $ bulk string
        const n = Number(line);
        if (n < 0) return { value: null, end: next };
        if (buf.length < next + n + 2) return INCOMPLETE;
        return { value: buf.subarray(next, next + n), end: next + n + 2 };
      }
      case 0x2a: { // * array
        const n = Number(line);
        if (n < 0) return { value: null, end: next };
        const arr = new Array(n);
        let p = next;
        for (let i = 0; i < n; i++) {
          const r = this.parse(p);
          if (r === INCOMPLETE) return INCOMPLETE;
          arr[i] = r.value;
          p = r.end;
        }
        return { value: arr, end: p };
      }
      default:
        throw new Error(`redis: protocol error (byte ${type})`);
    }
  }

  onLost() {
    fatal(`redis ${this.host}:${this.port}: connection lost`);
  }
}

function fatal(msg) {
  process.stderr.write(`baseline: ${msg}\n`);
  process.exit(1);
}

// ---- Endpoints ---------------------------------------------------------------
// Read once at start, as hookq stores them (common/endpoint.c): ids in the
// <P>:endpoints zset, one hash <P>:ep:<id> each. hookq's worker refreshes its
// cache when <P>:endpoints:ver moves; a simple worker caches forever.

function decodeKey(s) {
  // Standard Webhooks secret: "whsec_" + base64 of the key bytes.
  return Buffer.from(s.startsWith('whsec_') ? s.slice(6) : s, 'base64');
}

// Each endpoint gets its own keep-alive Agent: maxSockets is the endpoint's
// concurrency cap (an Agent counts per host:port, so endpoints sharing a host
// would otherwise share one cap). Requests beyond it wait inside the Agent.
function makeAgent(url, o) {
  const opts = { keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency, scheduling: 'lifo' };
  if (url.protocol !== 'https:') return new http.Agent(opts);
  return new https.Agent(o.ca ? { ...opts, ca: o.ca } : opts);
}

async function loadEndpoints(redis, o) {
  const prefix = o.prefix;
  const ids = (await redis.call('ZRANGE', `${prefix}:endpoints`, 0, -1)).map(String);
  // All HGETALLs are written before the first is awaited: one round trip.
  const hashes = await Promise.all(ids.map((id) => redis.call('HGETALL', `${prefix}:ep:${id}`)));
  const eps = new Map();
  ids.forEach((id, i) => {
    const h = {};
    for (let j = 0; j + 1 < hashes[i].length; j += 2) h[String(hashes[i][j])] = String(hashes[i][j + 1]);
    if (!h.url || !h.key1) return; // not an endpoint we can deliver to
    const headers = {};
    for (const line of (h.headers || '').split('\n')) { // custom "Name: value" lines
      const c = line.indexOf(':');
      if (c > 0) headers[line.slice(0, c).trim()] = line.slice(c + 1).trim();
    }
    const url = new URL(h.url);
    eps.set(id, {
      url,
      agent: makeAgent(url, o),
      enabled: h.enabled !== '0',
      keys: [h.key1, h.key2].filter((k) => k).map(decodeKey),
      headers,
    });
  });
  return eps;
}

// ---- Delivery ----------------------------------------------------------------

const TIMEOUT_MS = 15000;

// Standard Webhooks v1: base64 HMAC-SHA256 over "<id>.<ts>.<body>", one
// "v1,<sig>" per key, space-separated.
function signature(keys, id, ts, body) {
  return keys
    .map((k) => 'v1,' + crypto.createHmac('sha256', k).update(`${id}.${ts}.`).update(body).digest('base64'))
    .join(' ');
}

// Resolves true for a 2xx, false for any other status or an error; never rejects.
function post(ep, id, body) {
  return new Promise((resolve) => {
    const ts = Math.floor(Date.now() / 1000);
    const req = (ep.url.protocol === 'https:' ? https : http).request(ep.url, {
      method: 'POST',
      agent: ep.agent,
      headers: {
        ...ep.headers,
        'Content-Type': 'application/json',
        'Content-Length': body.length,
        'webhook-id': id,
        'webhook-timestamp': String(ts),
        'webhook-signature': signature(ep.keys, id, ts, body),
      },
    }, (res) => {
      res.resume(); // read and discard the body so the socket can be reused
      res.on('end', () => done(res.statusCode >= 200 && res.statusCode < 300));
      res.on('error', () => done(false));
    });
    // A deadline for the whole request (the socket 'timeout' option would only
    // bound idle time between packets).
    const timer = setTimeout(() => req.destroy(new Error('timeout')), TIMEOUT_MS);
    function done(ok) {
      clearTimeout(timer);
      resolve(ok);
    }
    req.on('error', () => done(false));
    req.end(body);
  });
}

// ---- The worker ------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const stream = `${o.prefix}:events`;
  const GROUP = 'workers';

  // Two connections: a blocking XREADGROUP holds its connection for up to 2 s,
  // and XACKs must not wait behind it.
  const reader = new Redis(o.host, o.port);
  const cmd = new Redis(o.host, o.port);
  try {
    await Promise.all([reader.connect(), cmd.connect()]);
  } catch (e) {
    fatal(`redis ${o.host}:${o.port}: ${e.message}`);
  }

  const eps = await loadEndpoints(cmd, o);
  try {
    await cmd.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM');
  } catch (e) {
    if (!e.message.startsWith('BUSYGROUP')) fatal(`XGROUP CREATE: ${e.message}`);
  }

  let inflight = 0;
  let reading = false;
  let stopping = false;
  let delivered = 0;
  let failed = 0; // non-2xx, errors, and entries skipped (no/unknown/disabled endpoint)

  // ACKs: entry ids finished during one event-loop turn go out as one XACK.
  let acks = [];
  let lastAck = Promise.resolve();
  function ack(entryId) {
    if (acks.length === 0) setImmediate(flushAcks);
    acks.push(entryId);
  }
  function flushAcks() {
    if (acks.length === 0) return;
    const ids = acks;
    acks = [];
    // Replies arrive in order, so awaiting the last XACK awaits them all.
    lastAck = cmd.call('XACK', stream, GROUP, ...ids).catch((e) => fatal(`XACK: ${e.message}`));
  }

  function handle(entryId, fields) {
    const f = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[String(fields[i])] = fields[i + 1];
    const ep = f.endpoint && eps.get(String(f.endpoint));
    // No `endpoint` field would mean "every subscribed endpoint" (and a
    // msgpack `event` field another form): not implemented, the bench never
    // writes them. Counted as failed and ACKed, like an unknown endpoint.
    if (!ep || !ep.enabled || !f.payload) {
      failed++;
      ack(entryId);
      return;
    }
    const id = f.id ? String(f.id) : `evt_${entryId}`;
    inflight++; // includes requests queued in the Agent: they hold an entry too
    post(ep, id, f.payload).then((ok) => {
      if (ok) delivered++;
      else failed++; // a real worker would schedule a retry here
      inflight--;
      ack(entryId);
      readMore();
    });
  }

  // At most one XREADGROUP outstanding, asking for as many entries as there
  // is room for under the global in-flight bound.
  function readMore() {
    if (reading || stopping || inflight >= o.inflight) return;
    reading = true;
    const count = Math.min(o.inflight - inflight, 256);
    reader.call('XREADGROUP', 'GROUP', GROUP, o.consumer, 'COUNT', count, 'BLOCK', 2000, 'STREAMS', stream, '>')
      .then((reply) => {
        reading = false;
        for (const [, entries] of reply || []) for (const [entryId, fields] of entries) handle(String(entryId), fields);
        readMore();
      }, (e) => fatal(`XREADGROUP: ${e.message}`));
  }

  async function shutdown() {
    if (stopping) return;
    stopping = true;
    // Wait for the outstanding read (its entries are delivered too, so none is
    // left pending) and the deliveries in flight, at most 5 s.
    const deadline = Date.now() + 5000;
    while ((reading || inflight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    flushAcks();
    await lastAck;
    process.stderr.write(`baseline: delivered=${delivered} failed=${failed}\n`);
    reader.close();
    cmd.close();
    process.exit(0);
  }
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  readMore();
}

main().catch((e) => fatal(e.message));
