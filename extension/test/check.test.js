// The extension's check logic without a browser: what is sent, and what is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { buildRequest, checkMatch } from '../src/check.js';
import { analyse, sha256Hex } from '../src/fingerprint.js';

const answer = 'Bread rises because yeast ferments the sugars in the flour. The yeast releases carbon dioxide, and the gluten network traps the gas in small pockets, so the dough swells.';

function signedRecord(text) {
  const a = analyse(text);
  const record = {
    model: { name: 'gemma3:270m' },
    output: {
      bytes: new TextEncoder().encode(text).length,
      fingerprints: { hashes: a.hashes, k: 5, rule: 'wk-v1', w: 4 },
      mime: 'text/plain; charset=utf-8',
      normalized: { rule: 'nfc-ws-v1', sha256: sha256Hex(a.normalized) },
      sha256: sha256Hex(text),
    },
    v: 1,
  };
  return finalizeEvent({ kind: 1988, created_at: 1793491200, tags: [], content: JSON.stringify(record) }, generateSecretKey());
}

test('only hashes and fingerprints are sent', () => {
  const { body } = buildRequest(answer);
  assert.deepEqual(Object.keys(body).sort(), ['fingerprints', 'normalized_sha256', 'sha256']);
  assert.ok(!JSON.stringify(body).includes('yeast'));
});

test('a copied part is covered, an altered event is refused', () => {
  const ev = signedRecord(answer);
  const part = 'The yeast releases carbon dioxide, and the gluten network traps the gas in small pockets';
  const ok = checkMatch({ id: ev.id, event: ev, claims: [], signer: { trusted: null } }, buildRequest(part));
  assert.equal(ok.ok, true);
  assert.equal(ok.kind, 'partial');
  assert.equal(ok.coverage.fraction, 1);
  const whole = checkMatch({ id: ev.id, event: ev, claims: [] }, buildRequest(answer));
  assert.equal(whole.kind, 'exact');
  const altered = { ...ev, content: ev.content.replace('gemma3:270m', 'gpt-5') };
  const refused = checkMatch({ id: ev.id, event: altered, claims: [] }, buildRequest(answer));
  assert.equal(refused.ok, false);
  assert.match(refused.reason, /does not verify/);
});
