// The options page: the lookup server (validated, with a test, and the host permission asked
// for when a server elsewhere is saved) and the reader's trust list.
import { loadSettings, validateServer, permissionFor } from './settings.js';
import { loadTrustList } from './trust.js';
import { npubEncode } from '../vendor/nostr.js';
import { shortNpub } from './present.js';

const $ = (id) => document.getElementById(id);

function say(id, text, ok) {
  $(id).textContent = text;
  $(id).className = ok ? 'ok' : 'bad';
}

async function testServer() {
  let server;
  try {
    server = validateServer($('server').value).url;
  } catch (e) {
    say('server-status', `Not a usable address: ${e.message}.`, false);
    return;
  }
  say('server-status', 'Testing…', true);
  try {
    const resp = await fetch(`${server}/healthz`, { credentials: 'omit', signal: AbortSignal.timeout(10000) });
    const body = await resp.json().catch(() => null);
    if (!resp.ok || !body || body.status !== 'ok') throw new Error(`it answered ${resp.status}, not as a lookup server does`);
    const n = body.counters && Number.isFinite(body.counters.indexed) ? body.counters.indexed : '?';
    say('server-status', `Reachable: a lookup server holding ${n} signed records.`, true);
  } catch (e) {
    const why = e.name === 'TimeoutError' ? 'no answer within 10 s' : e.message;
    say('server-status', `Cannot reach it: ${why}. Is it running, and is the address right?`, false);
  }
}

async function saveServer() {
  let server;
  let permission;
  try {
    server = validateServer($('server').value).url;
    permission = permissionFor(server);
  } catch (e) {
    say('server-status', `Not saved: ${e.message}.`, false);
    return;
  }
  // Asked now, while the click counts as the user's gesture: a server off this machine needs
  // the user's permission for its origin.
  if (permission) {
    let granted = false;
    try {
      granted = await chrome.permissions.request(permission);
    } catch (e) {
      say('server-status', `Not saved: the permission request failed (${e.message}).`, false);
      return;
    }
    if (!granted) {
      say('server-status', `Not saved: without your permission the extension cannot reach ${new URL(server).host}.`, false);
      return;
    }
  }
  await chrome.storage.local.set({ server });
  $('server').value = server;
  say('server-status', `Saved: checks now go to ${server}.`, true);
}

function showKeys(list) {
  $('trust-keys').replaceChildren(...(list ? list.entries : []).map((e) => {
    const li = document.createElement('li');
    const how = e.source === 'nip05' ? 'looked up over NIP-05' : e.name ? 'pinned' : '';
    li.textContent = `${e.name ? `${e.name}: ` : ''}${shortNpub(npubEncode(e.key))}${how ? ` (${how})` : ''}`;
    return li;
  }));
}

async function saveTrust() {
  const text = $('trust').value;
  say('trust-status', 'Saving…', true);
  let list;
  try {
    list = await loadTrustList(text);
  } catch (e) {
    say('trust-status', `Not saved: ${e.message}.`, false);
    return;
  }
  await chrome.storage.local.set({ trust: list });
  const n = list.entries.length;
  say('trust-status', n ? `Saved: ${n} key${n === 1 ? '' : 's'} on your trust list.` : 'Saved: your trust list is empty.', true);
  showKeys(list);
}

async function init() {
  const { server, trust } = await loadSettings();
  $('server').value = server;
  $('trust').value = trust ? trust.text : '';
  showKeys(trust);
  $('test-server').addEventListener('click', testServer);
  $('save-server').addEventListener('click', saveServer);
  $('save-trust').addEventListener('click', saveTrust);
  document.body.dataset.ready = 'true';
}

init();
