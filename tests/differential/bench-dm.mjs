// Gift-wrap throughput of nostr-tools on the same JSON Lines wraps the Rust side is timed on
// (scripts/bench-dm.sh, made by benches/src/bin/gen-wraps.rs): for each line, JSON.parse, then
// what `provenance_dm::gift::unwrap` does to open and check a NIP-17 direct message:
// the wrap's id and signature (verifyEvent), the seal decrypted (NIP-44 v2), its id and
// signature, the rumor decrypted, its author is the seal's, and its id is the hash of its
// fields (getEventHash). Two back ends:
//
// - pure: verifyEvent(wrap) from nostr-tools/pure, then nip17.unwrapEvent (which decrypts both
//   layers, checks the seal with its own pure-JS verifyEvent and the rumor's author), then the
//   rumor id. All of it @noble/curves, @noble/ciphers and @noble/hashes.
// - wasm: the same steps by hand with nostr-tools' nip44 and nostr-wasm's verifyEvent
//   (libsecp256k1 in WebAssembly) for the wrap and the seal, as nip59.unwrapEvent does them
//   (it takes no other verifyEvent).
//
// node tests/differential/bench-dm.mjs WRAPS.jsonl KEY.hex WASM_COUNT PURE_COUNT
// Prints one JSON object: {"wasm": {"wraps", "seconds", "per_sec", "opened"}, "pure": {...}}.
// Each back end takes one pass over the first COUNT lines; single-threaded, as nostr-tools is.
import { readFileSync } from 'node:fs';
import * as pure from 'nostr-tools/pure';
import * as wasm from 'nostr-tools/wasm';
import * as nip17 from 'nostr-tools/nip17';
import * as nip44 from 'nostr-tools/nip44';
import { initNostrWasm } from 'nostr-wasm';

wasm.setNostrWasm(await initNostrWasm());

const [file, keyFile, wasmCount, pureCount] = process.argv.slice(2);
const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.length > 0);
const secret = Uint8Array.from(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'hex'));

const rumorIdHolds = (rumor) => pure.getEventHash(rumor) === rumor.id;

function openPure(line) {
  const wrap = JSON.parse(line);
  if (!pure.verifyEvent(wrap)) return false;
  return rumorIdHolds(nip17.unwrapEvent(wrap, secret));
}

const decrypt = (event) =>
  JSON.parse(nip44.v2.decrypt(event.content, nip44.v2.utils.getConversationKey(secret, event.pubkey)));

function openWasm(line) {
  const wrap = JSON.parse(line);
  if (wrap.kind !== 1059 || !wasm.verifyEvent(wrap)) return false;
  const seal = decrypt(wrap);
  if (seal.kind !== 13 || !wasm.verifyEvent(seal)) return false;
  const rumor = decrypt(seal);
  return rumor.pubkey === seal.pubkey && rumorIdHolds(rumor);
}

function time(open, count) {
  const start = process.hrtime.bigint();
  let opened = 0;
  for (let i = 0; i < count; i++) {
    try {
      if (open(lines[i])) opened++;
    } catch {
      // A wrap that does not open is counted as not opened.
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { wraps: count, seconds, per_sec: count / seconds, opened };
}

const result = {
  wasm: time(openWasm, Math.min(Number(wasmCount), lines.length)),
  pure: time(openPure, Math.min(Number(pureCount), lines.length)),
};
console.log(JSON.stringify(result));
