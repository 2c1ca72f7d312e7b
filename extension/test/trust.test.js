// The reader's trust list: the format of `provenance verify --trust`, and NIP-05 look-ups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { npubEncode } from 'nostr-tools/nip19';
import { parseTrustList, loadTrustList, resolveNip05, onCurve, findTrusted, isLoopbackHost } from '../src/trust.js';

// The generator point's x: on the curve (the CLI's tests use it too).
const KEY = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';
const OTHER = 'c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5'; // 2G

function answering(map, calls = []) {
  return async (url, init) => {
    calls.push({ url, init });
    const u = new URL(url);
    const name = u.searchParams.get('name');
    const body = map[`${name}@${u.host}`];
    if (body === undefined) return new Response('{}', { status: 404 });
    return new Response(JSON.stringify({ names: { [name]: body } }), { status: 200 });
  };
}

test('entries: keys, pinned names, comments, and names to look up', () => {
  const text = `# my list\n${KEY}\nalice@example.com ${npubEncode(OTHER)} # pinned\n\nbob@example.com\n`;
  const { entries, lookups } = parseTrustList(text);
  assert.deepEqual(entries, [
    { key: KEY, name: null, source: 'pinned' },
    { key: OTHER, name: 'alice@example.com', source: 'pinned' },
  ]);
  assert.deepEqual(lookups, [{ line: 5, name: 'bob@example.com' }]);
});

test('bad lines are refused with their line and the CLI wording', () => {
  assert.ok(onCurve(KEY));
  assert.ok(!onCurve((5).toString(16).padStart(64, '0')), 'x = 5 is not on secp256k1');
  assert.throws(() => parseTrustList(`${KEY}\n${(5).toString(16).padStart(64, '0')}\n`), /^Error: line 2: not an npub or a 64-hex public key$/);
  assert.throws(() => parseTrustList(`a b ${KEY}`), /line 1: expected "\[NAME\] KEY" or a NIP-05 name/);
  assert.throws(() => parseTrustList(`al\u0007ice ${KEY}`), /is not a usable name/);
  assert.throws(() => parseTrustList('npub1notakey'), /line 1: not a valid npub/);
});

test('NIP-05: https elsewhere, plain http on loopback, redirects refused, the key checked', async () => {
  const calls = [];
  const fetchImpl = answering({ 'bob@example.com': KEY, 'carol@127.0.0.1:9999': OTHER, 'dave@example.com': 'zz' }, calls);
  assert.equal(await resolveNip05('Bob@example.com', { fetchImpl }), KEY);
  assert.equal(calls[0].url, 'https://example.com/.well-known/nostr.json?name=bob');
  assert.equal(calls[0].init.redirect, 'error');
  assert.equal(await resolveNip05('carol@127.0.0.1:9999', { fetchImpl }), OTHER);
  assert.equal(calls[1].url, 'http://127.0.0.1:9999/.well-known/nostr.json?name=carol');
  await assert.rejects(resolveNip05('eve@example.com', { fetchImpl }), /answered 404/);
  await assert.rejects(resolveNip05('dave@example.com', { fetchImpl }), /not a 64-hex public key/);
  await assert.rejects(resolveNip05('b!b@example.com', { fetchImpl }), /not a NIP-05 identifier/);
  assert.ok(isLoopbackHost('localhost:8787') && isLoopbackHost('[::1]:80') && !isLoopbackHost('example.com'));
});

test('a saved list holds pinned and looked-up keys; a name that does not resolve stops it', async () => {
  const fetchImpl = answering({ 'bob@example.com': OTHER });
  const list = await loadTrustList(`pet ${KEY}\nbob@example.com\n`, { fetchImpl });
  assert.deepEqual(list.entries.map((e) => [e.name, e.source]), [['pet', 'pinned'], ['bob@example.com', 'nip05']]);
  assert.equal(findTrusted(list, OTHER).name, 'bob@example.com');
  assert.equal(findTrusted(list, 'ab'.repeat(32)), null);
  await assert.rejects(loadTrustList(`${KEY}\nnobody@example.com\n`, { fetchImpl }), /^Error: line 2: .*answered 404/);
});
