// What a reader reads: one sentence and a badge per match, then the evidence grouped by
// subject. Pure functions of the check's result (check.js), so that the node tests cover them.
// Words it never uses: "AI-generated", "authentic" (a record shows who signed what, not who
// wrote a text first, and no record shows nothing).

/** `npub1` and the first and last six characters. */
export function shortNpub(npub) {
  return `${npub.slice(0, 11)}…${npub.slice(-6)}`;
}

/** The first and last eight hex digits of an id. */
export function shortId(hex) {
  return `${hex.slice(0, 8)}…${hex.slice(-8)}`;
}

/** "1 November 2026" (UTC, as the details' full time says). */
export function dateText(createdAt) {
  return new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(new Date(createdAt * 1000));
}

/** "2026-11-01 00:00:00 UTC". */
export function timeText(createdAt) {
  return `${new Date(createdAt * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`;
}

/** How the reader's list names a key: 'alice' or 'bob@example.com'. */
export function signerName(m) {
  return m.yours && m.yours.name ? m.yours.name : shortNpub(m.npub);
}

/**
 * The badge: { tone, text }. Tones: 'trusted' (the reader's list), 'server' (only the lookup
 * server's list), 'neutral' (no list names the key), 'warning', 'none', 'error'.
 */
export function trustBadge(m) {
  if (m.yours) return { tone: 'trusted', text: 'On your trust list' };
  if (m.trusted === true) return { tone: 'server', text: "On the server's trust list" };
  return { tone: 'neutral', text: 'Key on no trust list' };
}

function who(m, hasOwnList) {
  const name = signerName(m);
  if (m.yours) return `A key on your trust list (${name})`;
  if (m.trusted === true) return `A key on the lookup server's trust list${hasOwnList ? ' but not on yours' : ''} (${name})`;
  if (m.trusted === false || hasOwnList) return `A key on no trust list (${name})`;
  return `A key (${name}) that no trust list names`;
}

function howMuch(m) {
  if (m.kind === 'exact') return 'that is exactly this text';
  if (m.kind === 'normalized') return 'that is this text (only spacing or Unicode form differ)';
  const pct = Math.round(m.coverage.fraction * 100);
  if (m.coverage.fraction === 1) return 'containing all of this text';
  return `containing ${pct === 100 ? 99 : pct} % of this text (the highlighted parts)`;
}

/** The sentence that leads a match. */
export function summary(m, hasOwnList = false) {
  return `${who(m, hasOwnList)} signed an answer of ${m.model} on ${dateText(m.createdAt)} ${howMuch(m)}.`;
}

/** What was proven in the browser and what is only the signer's statement, in words. */
export function provenLine(m) {
  const stated = 'the model, the time and the settings are the signer\'s statement';
  if (m.kind === 'partial') {
    return `The signature was checked in your browser, and the text against the fingerprints the signer recorded; ${stated}.`;
  }
  return `The signature and the text were checked in your browser; ${stated}.`;
}

// Subjects, in the order shown, and the claim prefixes each holds.
export const SUBJECTS = [
  { id: 'signature', label: 'Signature', prefixes: ['event.', 'record.'] },
  { id: 'text', label: 'Text', prefixes: ['output.'] },
  { id: 'prompt', label: 'Prompt', prefixes: ['prompt.'] },
  { id: 'model', label: 'Model and settings', prefixes: ['model.', 'generation.', 'attestation.'] },
  { id: 'trust', label: 'Trust', prefixes: ['signer.', 'label.', 'reader.'] },
];

// One row per claim: a claim is its code's first two parts (event.sig.valid and
// event.sig.invalid are the same claim, output.hash.match and output.hash.asserted too).
const ROW_LABEL = {
  'event.id': 'The event id matches its content',
  'event.sig': 'The signature is valid for the key',
  'event.kind': 'It is a provenance event',
  'event.tags': 'Its tags agree with the record',
  'event.author': 'The author is the one asked for',
  'record.content': 'The record is well formed',
  'output.hash': 'The hash of the signed output',
  'output.fingerprints': 'The selection is in the signed output',
  'output.response': 'The whole response was signed',
  'prompt.commitment': 'The prompt',
  'model.digest': 'The model file',
  'generation.settings': 'The generation settings',
  'generation.replay': 'A replay of the generation',
  'attestation.evidence': 'Hardware attestation',
  'signer.trust': "The lookup server's trust list",
  'reader.trust': 'Your trust list',
  'label.audit': 'Labels from auditors',
};

const STATUS_WORD = {
  proven: { browser: 'Checked in your browser', server: 'Checked by the lookup server', you: 'Checked in your browser' },
  asserted: 'Stated by the signer',
  unknown: 'Not known',
  failed: 'Failed',
};

/** The words for a status from a source. */
export function statusWord(status, by) {
  const w = STATUS_WORD[status] || status;
  return typeof w === 'string' ? w : w[by] || w.server;
}

// The strongest evidence wins: a failure always shows; then proven over asserted over
// unknown; at the same status the browser's own check over the server's word.
const STRENGTH = { failed: 4, proven: 3, asserted: 2, unknown: 1 };
const SOURCE = { browser: 2, you: 2, server: 1 };

function stronger(a, b) {
  return (STRENGTH[a.status] || 0) - (STRENGTH[b.status] || 0) || (SOURCE[a.by] || 0) - (SOURCE[b.by] || 0);
}

/** The claims the reader's own list makes about a match. */
export function readerClaims(m, hasOwnList) {
  if (m.yours) {
    const how = m.yours.source === 'nip05' ? 'its key was looked up over NIP-05 when you saved the list' : 'pinned in your list';
    return [{ code: 'reader.trust.listed', status: 'proven', detail: m.yours.name ? `as ${m.yours.name} (${how})` : 'listed by key' }];
  }
  if (hasOwnList) return [{ code: 'reader.trust.unlisted', status: 'failed', detail: 'your trust list does not name this key' }];
  return [{ code: 'reader.trust.unknown', status: 'unknown', detail: 'you have no trust list (set one in the options)' }];
}

/**
 * The evidence, grouped: [{ id, label, rows: [{ key, label, best, evidence: [...] }] }], groups
 * without rows left out. Every claim keeps its source: 'browser', 'you' (the reader's list) or
 * 'server'.
 */
export function claimGroups(m, hasOwnList = false) {
  const all = [
    ...m.local.map((c) => ({ ...c, by: 'browser' })),
    ...readerClaims(m, hasOwnList).map((c) => ({ ...c, by: 'you' })),
    ...m.claims.map((c) => ({ ...c, by: 'server' })),
  ];
  const rows = new Map();
  for (const c of all) {
    const key = c.code.split('.').slice(0, 2).join('.');
    if (!rows.has(key)) rows.set(key, { key, label: ROW_LABEL[key] || key, evidence: [] });
    rows.get(key).evidence.push(c);
  }
  for (const row of rows.values()) {
    row.evidence.sort((a, b) => stronger(b, a));
    row.best = row.evidence[0];
    Object.assign(row, rowState(row));
  }
  return SUBJECTS.map((s) => ({
    id: s.id,
    label: s.label,
    rows: [...rows.values()].filter((r) => s.prefixes.some((p) => r.key.startsWith(p))),
  })).filter((g) => g.rows.length);
}

// A trust list naming a key or not is a fact about the list, not a failed check: its rows
// say whose list and whether it names the key, in a neutral colour unless it does.
const TRUST_WORDS = {
  'reader.trust': { proven: 'On your list', failed: 'Not on your list', unknown: 'You have no list' },
  'signer.trust': { proven: "On the server's list", failed: "Not on the server's list", unknown: 'The server has no list' },
};

/** A row's words and tone (the CSS status class) from its strongest evidence. */
export function rowState(row) {
  const { status, by } = row.best;
  const trust = TRUST_WORDS[row.key];
  if (trust) return { word: trust[status] || trust.unknown, tone: status === 'proven' ? 'proven' : 'unknown' };
  return { word: statusWord(status, by), tone: status };
}

/**
 * The group's one-line state: each different state of its rows once, failures first, then
 * the strongest: [{ word, tone }].
 */
export function groupState(group) {
  const order = ['failed', 'proven', 'asserted', 'unknown'];
  const seen = new Map();
  for (const r of [...group.rows].sort((a, b) => order.indexOf(a.tone) - order.indexOf(b.tone))) {
    if (!seen.has(r.word)) seen.set(r.word, { word: r.word, tone: r.tone });
  }
  return [...seen.values()];
}

/** The line under the matches, in place of the server's note. */
export const FOOTNOTE = 'A record shows that the holder of a key signed an output containing the text; it does not show who wrote the text first.';

/** The sentence for no match. */
export const NO_MATCH = 'No signed record contains this text; that does not mean a person wrote it.';

/** What a failed lookup means and what to do: { sentence, todo }. */
export function lookupFailure(error, server) {
  if (error.kind === 'unreachable') {
    return {
      sentence: `The lookup server at ${server} could not be reached, so nothing was checked.`,
      todo: 'Check that it is running (provenance lookup serve) and that its address in the options is right.',
    };
  }
  if (error.kind === 'permission') {
    return {
      sentence: `The extension may not ask ${server} yet, so nothing was checked.`,
      todo: 'Open the options and save the server again: the browser then asks you to allow it.',
    };
  }
  const said = `The lookup server at ${server} refused the check (${error.status}: ${error.message}).`;
  let todo = 'Try again later, or set another lookup server in the options.';
  if (error.status === 429) todo = `It limits how often one address may ask: try again${error.retryAfter ? ` in ${error.retryAfter} s` : ' in a moment'}.`;
  else if (error.status === 413) todo = 'The selection is too long for this server: select less text.';
  else if (error.status === 400 || error.status === 422) todo = 'It does not accept what this extension sends: it may run another version. Set another lookup server in the options.';
  else if (error.status === 404 || (error.status >= 200 && error.status < 300)) todo = 'The address may not be a lookup server: check it in the options.';
  return { sentence: said, todo };
}

/** The warning for a record that did not verify in the browser. */
export function refusedWarning(r) {
  return `Warning: the lookup server returned a record that does not hold up (${r.reason}). It was altered after it was signed, or forged; nothing it says can be relied on.`;
}
