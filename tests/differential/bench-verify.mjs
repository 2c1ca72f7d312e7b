// Verification rate of nostr-tools on the same JSON Lines events the Rust verifier is timed on
// (scripts/bench-verify.sh): JSON.parse + verifyEvent (id recomputation and BIP-340 check),
// with the pure-JS back end (@noble/curves) and with nostr-wasm (libsecp256k1 in WebAssembly).
//
// node tests/differential/bench-verify.mjs EVENTS.jsonl WASM_COUNT PURE_COUNT
// Prints one JSON object: {"wasm": {"events", "seconds", "per_sec", "valid"}, "pure": {...}}.
// Each back end takes the first COUNT lines of the file; single-threaded, as verifyEvent is.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import * as pure from 'nostr-tools/pure';
import * as wasm from 'nostr-tools/wasm';
import { initNostrWasm } from 'nostr-wasm';

wasm.setNostrWasm(await initNostrWasm());

const [file, wasmCount, pureCount] = process.argv.slice(2);
const want = Math.max(Number(wasmCount), Number(pureCount));
const lines = [];
for await (const line of createInterface({ input: createReadStream(file) })) {
  if (lines.length >= want) break;
  lines.push(line);
}

function time(verifyEvent, count) {
  const start = process.hrtime.bigint();
  let valid = 0;
  for (let i = 0; i < count; i++) {
    if (verifyEvent(JSON.parse(lines[i]))) valid++;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { events: count, seconds, per_sec: count / seconds, valid };
}

const result = {
  wasm: time(wasm.verifyEvent, Math.min(Number(wasmCount), lines.length)),
  pure: time(pure.verifyEvent, Math.min(Number(pureCount), lines.length)),
};
console.log(JSON.stringify(result));
