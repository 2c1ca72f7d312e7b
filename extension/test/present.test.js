// What a reader reads: the sentence, the badge, the evidence grouped with the strongest on
// top, the order of several matches, and the failure states.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { buildRequest, checkMatch, orderMatches, LookupError } from '../src/check.js';
import { analyse, sha256Hex } from '../src/fingerprint.js';
import { summary, provenLine, trustBadge, claimGroups, groupState, lookupFailure, refusedWarning, NO_MATCH, shortNpub, shortId } from '../src/present.js';

const answer = 'Bread rises because yeast ferments the sugars in the flour. The yeast releases carbon dioxide, and the gluten network traps the gas in small pockets, so the dough swells.';
const part = 'The yeast releases carbon dioxide, and the gluten network traps the gas in small pockets';

function signed(text, createdAt = 1793491200, sk = generateSecretKey()) {
  const a = analyse(text);
  const record = {
    model: { name: 'gemma3:270m' },
    output: { fingerprints: { hashes: a.hashes, k: 5, rule: 'wk-v1', w: 4 }, normalized: { rule: 'nfc-ws-v1', sha256: sha256Hex(a.normalized) }, sha256: sha256Hex(text) },
    v: 1,
  };
  return finalizeEvent({ kind: 1988, created_at: createdAt, tags: [], content: JSON.stringify(record) }, sk);
}

const serverClaims = [
  { code: 'event.sig.valid', status: 'proven', detail: 'BIP-340 signature verifies' },
  { code: 'event.kind.provenance', status: 'proven', detail: 'kind 1988' },
  { code: 'output.hash.asserted', status: 'asserted', detail: 'the signer states the output hash' },
  { code: 'model.digest.absent', status: 'unknown', detail: 'no model digest' },
  { code: 'signer.trust.listed', status: 'proven', detail: 'in the trust list' },
];

function matched(text, query, { trusted = null, yours = null, createdAt } = {}) {
  const ev = signed(text, createdAt);
  const m = checkMatch({ id: ev.id, event: ev, claims: serverClaims, signer: { pubkey: ev.pubkey, trusted } }, buildRequest(query));
  return { ...m, yours };
}

const words = (s) => assert.ok(!/AI-generated|authentic/i.test(s), s);

test('one sentence: who (name from your list), trust, model, date, and how much of the text', () => {
  const exact = matched(answer, answer, { trusted: true, yours: { key: 'k', name: 'demo-operator', source: 'pinned' } });
  assert.equal(summary(exact, true), 'A key on your trust list (demo-operator) signed an answer of gemma3:270m on 1 November 2026 that is exactly this text.');
  assert.deepEqual(trustBadge(exact), { tone: 'trusted', text: 'On your trust list' });
  assert.equal(provenLine(exact), "The signature and the text were checked in your browser; the model, the time and the settings are the signer's statement.");
  const paragraph = matched(answer, part, { trusted: true });
  assert.equal(summary(paragraph, true), `A key on the lookup server's trust list but not on yours (${shortNpub(paragraph.npub)}) signed an answer of gemma3:270m on 1 November 2026 containing all of this text.`);
  assert.deepEqual(trustBadge(paragraph), { tone: 'server', text: "On the server's trust list" });
  assert.match(provenLine(paragraph), /against the fingerprints the signer recorded/);
  const edited = matched(answer, `${part} and then something else entirely happened here`, { trusted: false });
  assert.match(summary(edited, false), /^A key on no trust list \(npub1.{6}….{6}\) signed .* containing \d+ % of this text \(the highlighted parts\)\.$/);
  assert.deepEqual(trustBadge(edited), { tone: 'neutral', text: 'Key on no trust list' });
  const nobody = matched(answer, `  ${answer.replace(/ /g, '\u00a0')}\n`);
  assert.match(summary(nobody, false), /^A key \(npub1.*\) that no trust list names signed .* that is this text \(only spacing or Unicode form differ\)\.$/);
  for (const m of [exact, paragraph, edited, nobody]) words(summary(m) + provenLine(m));
  words(NO_MATCH);
  assert.equal(shortId('ab'.repeat(32)), 'abababab…abababab');
});

test('one row per claim, the browser proof over the server assertion, both kept', () => {
  const m = matched(answer, answer, { trusted: true });
  const groups = claimGroups(m, false);
  assert.deepEqual(groups.map((g) => g.id), ['signature', 'text', 'model', 'trust']);
  const text = groups.find((g) => g.id === 'text');
  assert.equal(text.rows.length, 1);
  assert.equal(text.rows[0].best.code, 'output.hash.match');
  assert.equal(text.rows[0].best.by, 'browser');
  assert.deepEqual(text.rows[0].evidence.map((c) => `${c.code}@${c.by}`), ['output.hash.match@browser', 'output.hash.asserted@server']);
  const sig = groups.find((g) => g.id === 'signature').rows.find((r) => r.key === 'event.sig');
  assert.deepEqual(sig.evidence.map((c) => c.by), ['browser', 'server'], 'the same status: the browser wins');
  const trust = groups.find((g) => g.id === 'trust');
  assert.deepEqual(trust.rows.map((r) => r.key), ['reader.trust', 'signer.trust']);
  assert.deepEqual(groupState(groups.find((g) => g.id === 'model')), [{ word: 'Not known', tone: 'unknown' }]);
  assert.deepEqual(groupState(groups.find((g) => g.id === 'signature')).map((st) => st.word), ['Checked in your browser', 'Checked by the lookup server']);
  assert.deepEqual(trust.rows.map((r) => r.word), ['You have no list', "On the server's list"], 'a list is a fact, not a failed check');
  // A failure shows whatever else holds.
  const failing = { ...m, claims: [...m.claims, { code: 'event.sig.invalid', status: 'failed', detail: 'x' }] };
  const row = claimGroups(failing).find((g) => g.id === 'signature').rows.find((r) => r.key === 'event.sig');
  assert.equal(row.best.status, 'failed');
  assert.deepEqual(groupState(claimGroups(failing)[0])[0], { word: 'Failed', tone: 'failed' });
});

test('several matches: your trusted signer on top, then the server\'s, then the newest', () => {
  const old = matched(answer, answer, { yours: { name: 'bob' }, createdAt: 1000 });
  const mid = matched(answer, answer, { trusted: true, createdAt: 2000 });
  const newer = matched(answer, answer, { createdAt: 3000 });
  const newest = matched(answer, answer, { createdAt: 4000 });
  assert.deepEqual(orderMatches([newer, mid, newest, old]).map((m) => m.createdAt), [1000, 2000, 4000, 3000]);
});

test('failures say what happened and what to do', () => {
  const down = lookupFailure(new LookupError('unreachable', 'Failed to fetch'), 'http://127.0.0.1:1');
  assert.equal(down.sentence, 'The lookup server at http://127.0.0.1:1 could not be reached, so nothing was checked.');
  assert.match(down.todo, /running .*options/);
  const busy = lookupFailure(new LookupError('refused', 'too many requests', { status: 429, retryAfter: 7 }), 'https://lookup.example');
  assert.match(busy.sentence, /refused the check \(429: too many requests\)/);
  assert.match(busy.todo, /try again in 7 s/);
  assert.match(lookupFailure(new LookupError('refused', 'x', { status: 413 }), 's').todo, /select less/);
  assert.match(lookupFailure(new LookupError('permission', 'x'), 's').todo, /asks you to allow it/);
  const warning = refusedWarning({ reason: 'the event id or signature does not verify' });
  assert.match(warning, /^Warning: .*altered after it was signed, or forged/);
  words(warning);
});
