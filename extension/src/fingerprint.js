// Text normalisation (rule nfc-ws-v1, docs/normalization.md) and fingerprints (rule wk-v1,
// docs/fingerprint.md), exactly as the Rust crate computes them: the vectors in
// fixtures/normalize/ and fixtures/fingerprint/ are checked by test/vectors.test.js.
import { sha256 } from '../vendor/nostr.js';

export const NORMALIZE_RULE = 'nfc-ws-v1';
export const FINGERPRINT_RULE = 'wk-v1';
export const K = 5;
export const W = 4;
export const MAX_HASHES = 1024;

// The 25 White_Space code points; JavaScript's \s differs (it has U+FEFF, lacks U+0085).
const WHITE_SPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** Normalises by rule nfc-ws-v1: NFC, whitespace runs to one space, trimmed. */
export function normalize(text) {
  let out = '';
  let pendingSpace = false;
  for (const ch of text.normalize('NFC')) {
    if (WHITE_SPACE.has(ch.codePointAt(0))) {
      pendingSpace = true;
      continue;
    }
    if (pendingSpace && out.length > 0) out += ' ';
    pendingSpace = false;
    out += ch;
  }
  return out;
}

const encoder = new TextEncoder();

/** Lowercase hex of bytes. */
export function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** SHA-256 of the UTF-8 bytes of a string, hex. */
export function sha256Hex(text) {
  return toHex(sha256(encoder.encode(text)));
}

function isAsciiPunctuation(code) {
  return (code >= 0x21 && code <= 0x2f) || (code >= 0x3a && code <= 0x40)
    || (code >= 0x5b && code <= 0x60) || (code >= 0x7b && code <= 0x7e);
}

function foldAscii(text) {
  return text.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** The k-gram hash: first 8 bytes of SHA-256, as 16 hex digits (a BigInt compares them). */
export function kgramHash(gram) {
  return toHex(sha256(encoder.encode(gram)).subarray(0, 8));
}

/**
 * Normalises, tokenises and winnows `text` by rule wk-v1.
 * Returns { normalized, tokens: [{ text, start, end }] (UTF-16 offsets into `normalized`),
 * kgrams: [hex], selected: [k-gram index], hashes: [hex] (sorted, unique, capped) }.
 */
export function analyse(text) {
  const normalized = normalize(text);
  const folded = foldAscii(normalized);
  const tokens = [];
  let start = 0;
  for (const piece of folded.split(' ')) {
    let a = 0;
    let b = piece.length;
    // ASCII punctuation is one UTF-16 unit, so trimming by code unit is exact.
    while (a < b && isAsciiPunctuation(piece.charCodeAt(a))) a++;
    while (b > a && isAsciiPunctuation(piece.charCodeAt(b - 1))) b--;
    if (b > a) tokens.push({ text: piece.slice(a, b), start: start + a, end: start + b });
    start += piece.length + 1;
  }
  const kgrams = [];
  for (let i = 0; i + K <= tokens.length; i++) {
    kgrams.push(kgramHash(tokens.slice(i, i + K).map((t) => t.text).join(' ')));
  }
  const selected = winnow(kgrams.map((h) => BigInt('0x' + h)));
  const hashes = [...new Set(selected.map((i) => kgrams[i]))].sort().slice(0, MAX_HASHES);
  return { normalized, tokens, kgrams, selected, hashes };
}

/** Robust winnowing: positions of the rightmost minimum of each window of W, in order. */
export function winnow(values) {
  const out = [];
  if (values.length === 0) return out;
  const width = Math.min(W, values.length);
  const windows = Math.max(values.length - W, 0) + 1;
  for (let s = 0; s < windows; s++) {
    let best = s;
    for (let i = s; i < s + width; i++) if (values[i] <= values[best]) best = i;
    if (out[out.length - 1] !== best) out.push(best);
  }
  return out;
}

/**
 * Token ranges [first, end) covered by the selected k-grams whose hash is in `matched` (a
 * Set of hex), merged where they overlap.
 */
export function coveredRanges(analysis, matched) {
  const ranges = analysis.selected
    .filter((i) => matched.has(analysis.kgrams[i]))
    .map((i) => [i, i + K])
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const merged = [];
  for (const [first, end] of ranges) {
    const last = merged[merged.length - 1];
    if (last && first <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([first, end]);
  }
  return merged;
}
