// The check: fingerprint the text locally, ask the lookup server with hashes only (the text
// never leaves the browser), then verify every returned event here with nostr-tools and
// recompute what can be recomputed locally. The server's word is used only for what cannot
// be checked here (its trust list).
import { verifyEvent, npubEncode, neventEncode } from '../vendor/nostr.js';
import { findTrusted } from './trust.js';
import { analyse, coveredRanges, sha256Hex, FINGERPRINT_RULE, K, W, MAX_HASHES } from './fingerprint.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8787';

/** What the extension sends: hashes and fingerprints, never the text. */
export function buildRequest(text) {
  const a = analyse(text);
  return {
    analysis: a,
    body: {
      sha256: sha256Hex(text),
      normalized_sha256: sha256Hex(a.normalized),
      fingerprints: { rule: FINGERPRINT_RULE, k: K, w: W, hashes: a.hashes },
    },
  };
}

/**
 * Checks one match from the server. Returns { ok: false, reason } when the event does not
 * verify here, else what the extension shows, with coverage recomputed locally.
 */
export function checkMatch(match, request) {
  const ev = match.event;
  if (!ev || typeof ev !== 'object' || !verifyEvent(structuredClone(ev))) {
    return { ok: false, id: match.id, reason: 'the event id or signature does not verify' };
  }
  if (ev.kind !== 1988 || ev.id !== match.id) {
    return { ok: false, id: match.id, reason: 'not the provenance event the server described' };
  }
  let record;
  try {
    record = JSON.parse(ev.content);
  } catch {
    return { ok: false, id: match.id, reason: 'the event content is not a record' };
  }
  const out = record.output || {};
  const { analysis, body } = request;
  let kind = 'partial';
  if (out.sha256 === body.sha256) kind = 'exact';
  else if (out.normalized && out.normalized.rule === 'nfc-ws-v1' && out.normalized.sha256 === body.normalized_sha256) kind = 'normalized';
  let fraction = 1;
  let matched = analysis.hashes.length;
  let total = matched;
  let ranges = analysis.tokens.length ? [[0, analysis.tokens.length]] : [];
  if (kind === 'partial') {
    const fp = out.fingerprints;
    if (!fp || fp.rule !== FINGERPRINT_RULE || !Array.isArray(fp.hashes)) {
      return { ok: false, id: match.id, reason: 'the record has no fingerprints to match' };
    }
    const theirs = new Set(fp.hashes);
    // A capped set kept only its smallest hashes: compare only below its largest.
    const max = fp.hashes.length >= MAX_HASHES ? fp.hashes[fp.hashes.length - 1] : null;
    const considered = analysis.hashes.filter((h) => max === null || h <= max);
    const common = new Set(considered.filter((h) => theirs.has(h)));
    total = considered.length;
    matched = common.size;
    fraction = total ? matched / total : 0;
    ranges = coveredRanges(analysis, common);
    if (matched === 0) {
      return { ok: false, id: match.id, reason: 'no fingerprint of the selection is in this record' };
    }
  }
  const claims = (match.claims || []).map((c) => ({ code: c.code, status: c.status, detail: c.detail }));
  // Recomputed here: the signature (always), the output hash (for whole-text matches).
  const local = [
    { code: 'event.id.match', status: 'proven', detail: 'the id is the hash of the event, recomputed in the browser (nostr-tools)' },
    { code: 'event.sig.valid', status: 'proven', detail: 'the BIP-340 signature verified in the browser (nostr-tools)' },
  ];
  if (kind === 'partial') local.push({ code: 'output.fingerprints.shared', status: 'proven', detail: `${matched} of ${total} fingerprints of the selection are in the signed record (the signer computed those from its output)` });
  if (kind === 'exact') local.push({ code: 'output.hash.match', status: 'proven', detail: 'the selection hashes to the recorded SHA-256' });
  if (kind === 'normalized') local.push({ code: 'output.hash.normalized', status: 'proven', detail: 'the normalised selection matches the recorded hash' });
  return {
    ok: true,
    id: ev.id,
    nevent: neventEncode({ id: ev.id, author: ev.pubkey, kind: ev.kind }),
    kind,
    pubkey: ev.pubkey,
    npub: npubEncode(ev.pubkey),
    trusted: match.signer && match.signer.pubkey === ev.pubkey ? match.signer.trusted : null,
    model: (record.model && record.model.name) || '(unnamed)',
    createdAt: ev.created_at,
    time: new Date(ev.created_at * 1000).toISOString(),
    coverage: { fraction, matched, total, ranges },
    claims,
    local,
  };
}

/** Why a check did not get an answer: `unreachable` (no answer at all) or `refused`. */
export class LookupError extends Error {
  constructor(kind, message, { status = null, code = null, retryAfter = null } = {}) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * Order of the matches: the reader's trusted signers first, then the server's, then the rest;
 * within each, the larger coverage, then the newest.
 */
export function trustRank(m) {
  if (m.yours) return 0;
  if (m.trusted === true) return 1;
  return 2;
}

export function orderMatches(matches) {
  return [...matches].sort((a, b) => trustRank(a) - trustRank(b) || b.coverage.fraction - a.coverage.fraction || b.createdAt - a.createdAt);
}

/**
 * Runs the whole check against `server`. `trustList` is the reader's own (trust.js's stored
 * form); each accepted match gets `yours` (the list's entry for its key, or null).
 */
export async function check(text, server = DEFAULT_SERVER, { fetchImpl = fetch, trustList = null, timeoutMs = 15000 } = {}) {
  const request = buildRequest(text);
  let resp;
  try {
    resp = await fetchImpl(`${server.replace(/\/$/, '')}/v1/lookup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request.body),
      credentials: 'omit',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new LookupError('unreachable', e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : e.message);
  }
  let answer = null;
  try {
    answer = await resp.json();
  } catch {
    // Not JSON: not a lookup server, or a proxy's error page.
  }
  if (!resp.ok || !answer || !Array.isArray(answer.matches)) {
    const error = answer && answer.error;
    const retry = Number(resp.headers.get('retry-after'));
    throw new LookupError('refused', (error && error.message) || (resp.ok ? 'the answer is not a lookup answer' : `it answered ${resp.status}`), {
      status: resp.status,
      code: error ? error.code : null,
      retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
    });
  }
  const results = answer.matches.map((m) => checkMatch(m, request));
  const accepted = results.filter((r) => r.ok).map((r) => ({ ...r, yours: findTrusted(trustList, r.pubkey) }));
  return {
    normalized: request.analysis.normalized,
    tokens: request.analysis.tokens,
    accepted: orderMatches(accepted),
    refused: results.filter((r) => !r.ok),
    note: answer.note,
    hasOwnList: !!(trustList && trustList.entries && trustList.entries.length),
  };
}
