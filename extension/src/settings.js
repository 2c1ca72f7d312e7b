// The reader's settings, in chrome.storage.local: the lookup server and the trust list.
import { DEFAULT_SERVER } from './check.js';
import { isLoopbackHost } from './trust.js';

/**
 * Checks a lookup server address. Returns { url, origin, loopback } or throws with what is
 * wrong. Plain HTTP only on this machine: elsewhere the hashes of what you read would travel
 * in clear.
 */
export function validateServer(text) {
  let u;
  try {
    u = new URL(text.trim());
  } catch {
    throw new Error('not a URL (for example http://127.0.0.1:8787)');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('the address must start with http:// or https://');
  if (u.username || u.password) throw new Error('the address must not hold a user name or password');
  if (u.search || u.hash) throw new Error('the address must not hold a query or a fragment');
  const loopback = isLoopbackHost(u.host);
  if (u.protocol === 'http:' && !loopback) throw new Error('use https:// for a server on another machine (plain http only on 127.0.0.1 or localhost)');
  return { url: `${u.origin}${u.pathname.replace(/\/+$/, '')}`, origin: u.origin, loopback };
}

/** The host permission a server needs: none on loopback (the manifest grants it). */
export function permissionFor(server) {
  const { origin, loopback } = validateServer(server);
  return loopback ? null : { origins: [`${origin}/*`] };
}

export async function loadSettings() {
  const { server, trust } = await chrome.storage.local.get(['server', 'trust']);
  return { server: server || DEFAULT_SERVER, trust: trust || null };
}
