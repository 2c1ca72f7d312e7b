// The independent side of crates/core/tests/differential_nostr_tools.rs: nostr-tools (pure JS,
// on @noble/curves) and nostr-wasm (libsecp256k1 compiled to WebAssembly) verify, hash and
// sign Nostr events for the Rust test to compare with its own results.
//
// Protocol: one JSON request on stdin, one JSON answer on stdout.
//
//   request: {
//     "verify": [<event object>, ...],
//     "sign": [{"secret_key": <hex>, "created_at": <n>, "kind": <n>,
//               "tags": [[<string>, ...], ...], "content": <string>}, ...]
//   }
//   answer: {
//     "verify": [{"hash": <getEventHash>, "pure": <bool>, "wasm": <bool>}, ...],
//     "sign": [{"pure": <event JSON text>, "wasm": <event JSON text>}, ...]
//   }
//
// Signed events are returned as JSON text (JSON.stringify) so that the Rust side parses the
// exact bytes nostr-tools would send to a relay.

import * as pure from 'nostr-tools/pure';
import * as wasm from 'nostr-tools/wasm';
import { initNostrWasm } from 'nostr-wasm';

wasm.setNostrWasm(await initNostrWasm());

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));

// verifyEvent caches its result on the object (verifiedSymbol): give each verifier its own copy.
const copy = (event) => JSON.parse(JSON.stringify(event));
const bytes = (hex) => Uint8Array.from(Buffer.from(hex, 'hex'));

const verify = (request.verify ?? []).map((event) => ({
  hash: pure.getEventHash(copy(event)),
  pure: pure.verifyEvent(copy(event)),
  wasm: wasm.verifyEvent(copy(event)),
}));

const sign = (request.sign ?? []).map(({ secret_key, created_at, kind, tags, content }) => {
  const template = () => ({ created_at, kind, tags: copy(tags), content });
  return {
    pure: JSON.stringify(pure.finalizeEvent(template(), bytes(secret_key))),
    wasm: JSON.stringify(wasm.finalizeEvent(template(), bytes(secret_key))),
  };
});

process.stdout.write(JSON.stringify({ verify, sign }));
