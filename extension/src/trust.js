// The reader's trust list: the format of `provenance verify --trust` (crates/verify/src/trust.rs).
//
// One entry per line, `#` starts a comment:
//   npub1... or 64 hex          the key is trusted (it must be a point on secp256k1)
//   NAME npub1...               the key is trusted and shown as NAME (a petname or a NIP-05
//                               name, pinned: never looked up)
//   name@domain                 looked up over NIP-05 when the list is saved; the key the
//                               domain serves then is trusted
// A name that does not resolve is an error, never a silently shorter list.
import { decode } from '../vendor/nostr.js';

/** Most NIP-05 names one list may ask to look up (as the CLI). */
export const MAX_LOOKUPS = 256;

// secp256k1's field prime.
const P = 2n ** 256n - 2n ** 32n - 977n;

function powMod(base, exp, mod) {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}

/** Whether 64 hex digits are the x coordinate of a point on secp256k1 (BIP-340's lift_x). */
export function onCurve(hex) {
  if (!/^[0-9a-f]{64}$/.test(hex)) return false;
  const x = BigInt(`0x${hex}`);
  if (x >= P) return false;
  const c = (powMod(x, 3n, P) + 7n) % P;
  const y = powMod(c, (P + 1n) / 4n, P);
  return (y * y) % P === c;
}

/** `npub1...` or 64 hex to the hex key, or throws with the CLI's wording. */
export function parsePublicKey(s) {
  if (s.startsWith('npub1')) {
    let decoded;
    try {
      decoded = decode(s);
    } catch (e) {
      throw new Error(`not a valid npub: ${e.message}`);
    }
    if (decoded.type !== 'npub' || !onCurve(decoded.data)) throw new Error('not an npub or a 64-hex public key');
    return decoded.data;
  }
  if (!onCurve(s)) throw new Error('not an npub or a 64-hex public key');
  return s;
}

/** Splits `name@domain` (or `domain`, meaning `_@domain`) as NIP-05 does; null when it is not one. */
export function parseIdentifier(identifier) {
  const at = identifier.indexOf('@');
  const [name, host] = at >= 0 ? [identifier.slice(0, at), identifier.slice(at + 1)] : ['_', identifier];
  const nameOk = name.length > 0 && name.length <= 64 && /^[A-Za-z0-9._-]+$/.test(name);
  const hostOk = host.length > 0 && host.length <= 253 && !/^[.:-]/.test(host) && /^[A-Za-z0-9.:[\]-]+$/.test(host);
  return nameOk && hostOk ? { name: name.toLowerCase(), host } : null;
}

/** Whether a host (with an optional port) names this machine. */
export function isLoopbackHost(host) {
  const bare = host.startsWith('[') ? host.slice(1).split(']')[0] : host.split(':')[0];
  return ['localhost', '127.0.0.1', '::1'].includes(bare);
}

/**
 * Parses a trust list. Returns { entries: [{ key, name, source: 'pinned' }], lookups: [{ line,
 * name }] } or throws Error('LINE: detail'), the first line that is not an entry.
 */
export function parseTrustList(text) {
  const entries = [];
  const lookups = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const n = i + 1;
    const fields = line.split('#')[0].trim().split(/\s+/).filter(Boolean);
    const fail = (detail) => {
      throw new Error(`line ${n}: ${detail}`);
    };
    if (fields.length === 0) return;
    if (fields.length === 1 && fields[0].includes('@')) {
      lookups.push({ line: n, name: fields[0] });
      return;
    }
    if (fields.length > 2) fail('expected "[NAME] KEY" or a NIP-05 name');
    const [name, keyText] = fields.length === 2 ? fields : [null, fields[0]];
    let key;
    try {
      key = parsePublicKey(keyText);
    } catch (e) {
      fail(e.message);
    }
    if (name !== null && (/\p{Cc}/u.test(name) || new TextEncoder().encode(name).length > 253)) {
      fail(`${JSON.stringify(name)} is not a usable name`);
    }
    entries.push({ key, name, source: 'pinned' });
  });
  if (lookups.length > MAX_LOOKUPS) throw new Error(`${lookups.length} NIP-05 names to look up, at most ${MAX_LOOKUPS}`);
  return { entries, lookups };
}

/**
 * Looks up one NIP-05 name: `https://domain/.well-known/nostr.json?name=NAME` (plain HTTP only
 * for a loopback host), redirects refused, within `timeoutMs`. Returns the hex key.
 */
export async function resolveNip05(identifier, { fetchImpl = fetch, timeoutMs = 10000 } = {}) {
  const id = parseIdentifier(identifier);
  if (!id) throw new Error(`${identifier} is not a NIP-05 identifier (name@domain, the name in a-z 0-9 - _ .)`);
  const scheme = isLoopbackHost(id.host) ? 'http' : 'https';
  const url = `${scheme}://${id.host}/.well-known/nostr.json?name=${id.name}`;
  let resp;
  try {
    resp = await fetchImpl(url, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs), credentials: 'omit' });
  } catch (e) {
    throw new Error(`cannot fetch ${url}: ${e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : e.message}`);
  }
  if (resp.status !== 200) throw new Error(`${url} answered ${resp.status}`);
  let json;
  try {
    json = await resp.json();
  } catch {
    throw new Error(`${url}: the body is not JSON`);
  }
  const hex = json && json.names && json.names[id.name];
  if (typeof hex !== 'string') throw new Error(`${url}: no key for ${id.name}`);
  if (!onCurve(hex)) throw new Error(`${url}: the key for ${id.name} is not a 64-hex public key`);
  return hex;
}

/**
 * Parses the list and looks up its names (all at once). Returns the stored form:
 * { text, entries: [{ key, name, source: 'pinned' | 'nip05' }], resolvedAt }.
 * Throws on the first line that is not an entry or name that does not resolve.
 */
export async function loadTrustList(text, options = {}) {
  const { entries, lookups } = parseTrustList(text);
  const resolved = await Promise.all(lookups.map(async (l) => {
    try {
      return { key: await resolveNip05(l.name, options), name: l.name.toLowerCase(), source: 'nip05' };
    } catch (e) {
      throw new Error(`line ${l.line}: ${e.message}`);
    }
  }));
  const all = [...entries];
  for (const r of resolved) if (!all.some((e) => e.key === r.key)) all.push(r);
  return { text, entries: all, resolvedAt: lookups.length ? Date.now() : null };
}

/** The entry for a hex key in a stored list, or null. */
export function findTrusted(list, key) {
  return (list && list.entries && list.entries.find((e) => e.key === key)) || null;
}
