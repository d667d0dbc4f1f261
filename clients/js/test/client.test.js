// Tests of the client against a live service that this file starts
// (`python -m ruvector_graph_attn.cli serve` on a free port; RGA_PYTHON selects the interpreter).
// Every answer is compared with the Python API's answer on the same files (test/fixture.py).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { RgaClient, RgaServiceError } from '../index.js';

const here = dirname(fileURLToPath(import.meta.url));
const python = process.env.RGA_PYTHON || 'python3';
const token = randomBytes(24).toString('base64url');
let dir;
let proc;
let url;
let expected;
let client;

function camel(h) {
  return {
    id: h.id, score: h.score, vectorScore: h.vector_score, rank: h.rank, vectorRank: h.vector_rank,
    inGraph: h.in_graph, contextScore: h.context_score,
    attention: h.attention.map(([id, weight]) => ({ id, weight })),
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rga-js-'));
  execFileSync(python, [join(here, 'fixture.py'), dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  proc = spawn(python, ['-m', 'ruvector_graph_attn.cli', 'serve', '--index', join(dir, 'index'),
    '--graph', join(dir, 'graph.edgelist'), '--port', '0', '--max-batch', '8'], {
    env: { ...process.env, RGA_SERVICE_TOKEN: token },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  url = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('the service did not start within 300 s')), 300_000);
    proc.stdout.on('data', (chunk) => {
      buf += chunk;
      const m = buf.match(/RGA-SERVICE-READY (\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the service exited with code ${code}`)); });
  });
  proc.removeAllListeners('exit');
  client = new RgaClient({ url, token });
});

after(async () => {
  if (proc && proc.exitCode === null) {
    const done = new Promise((resolve) => proc.on('exit', resolve));
    proc.kill('SIGTERM');
    await done;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('health needs no token and reports the loaded data', async () => {
  const h = await new RgaClient({ url }).health();
  assert.equal(h.status, 'ok');
  assert.equal(h.dim, 12);
  assert.equal(h.index_size, 400);
  assert.equal(h.default_scorer, 'attention');
});

test('search equals the Python API', async () => {
  const hits = await client.search(expected.queries[0], { k: 5 });
  assert.deepEqual(hits, expected.search.map(camel));
  assert.ok(hits[0].attention.length > 0);
});

test('search with a filter equals the Python API and only returns allowed ids', async () => {
  const allow = [];
  for (let i = 0; i < 400; i += 2) allow.push(i);
  const hits = await client.search(expected.queries[0], { k: 5, filter: allow });
  assert.deepEqual(hits, expected.search_filter.map(camel));
  assert.ok(hits.every((h) => h.id % 2 === 0));
});

test('searchBatch with the vector scorer equals search_batch', async () => {
  const rows = await client.searchBatch(expected.queries, { k: 4, scorer: 'vector' });
  assert.deepEqual(rows, expected.batch_vector.map((r) => r.map(camel)));
});

test('rerank equals the Python API', async () => {
  const { ids, scores, hits } = expected.rerank;
  const got = await client.rerank(expected.queries[1], ids, { scores, k: 5 });
  assert.deepEqual(got, hits.map(camel));
});

test('embed equals the Python API', async () => {
  const v = await client.embed([1, 2, 3], { query: expected.queries[2] });
  assert.deepEqual(v, expected.embed);
});

test('vectors equals the index', async () => {
  assert.deepEqual(await client.vectors([4, 9]), expected.vectors);
});

test('traverse equals the Python API', async () => {
  assert.ok(expected.traverse.length >= 2);
  const paths = await client.traverse([7], [{ topK: 2 }, { topK: 2 }], { query: expected.queries[2] });
  assert.deepEqual(paths, expected.traverse);
});

test('metrics is Prometheus text', async () => {
  const text = await client.metrics();
  assert.match(text, /^# TYPE rga_requests_total counter$/m);
  assert.match(text, /^rga_requests_total\{endpoint="\/search",status="200"\} \d+$/m);
});

test('service errors become RgaServiceError with the error class', async () => {
  const q = expected.queries[0];
  const cases = [
    [() => client.search(q.slice(0, 3)), 422, 'DimensionMismatchError'],
    [() => client.search(q, { k: 0 }), 422, 'InvalidInputError'],
    [() => client.searchBatch(Array(9).fill(q)), 413, 'InputTooLargeError'],
    [() => client.embed([1, 123456]), 404, 'UnknownIdError'],
    [() => client.vectors([123456]), 404, 'UnknownIdError'],
    [() => client.search(q, { scorer: 'nope' }), 422, 'ConfigError'],
    [() => new RgaClient({ url, token: 'x'.repeat(32) }).search(q), 401, 'AuthenticationError'],
    [() => new RgaClient({ url }).search(q), 401, 'AuthenticationError'],
  ];
  for (const [call, status, error] of cases) {
    await assert.rejects(call(), (e) => {
      assert.ok(e instanceof RgaServiceError);
      assert.equal(e.status, status);
      assert.equal(e.error, error);
      assert.ok(e.message.length > error.length);
      return true;
    });
  }
  // still serving
  assert.deepEqual(await client.search(q, { k: 5 }), expected.search.map(camel));
});

test('an unreachable service is a ConnectionError; the token is not enumerable', async () => {
  const c = new RgaClient({ url: 'http://127.0.0.1:9', token, timeoutMs: 2000 });
  await assert.rejects(c.health(), (e) => e instanceof RgaServiceError && e.error === 'ConnectionError' && e.status === 0);
  assert.ok(!JSON.stringify(client).includes(token));
  assert.throws(() => new RgaClient({ url: 'ftp://x' }), TypeError);
});
