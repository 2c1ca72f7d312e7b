// The independent side of crates/dm/tests/differential_nostr_tools.rs: nostr-tools' NIP-44 v2
// (@noble/ciphers, @noble/hashes, @noble/curves) and its NIP-59 / NIP-17 gift wraps.
//
// Protocol: one JSON request on stdin, one JSON answer on stdout. Every list is optional.
//
//   request: {
//     "encrypt": [{"secret_key": <hex>, "public_key": <hex>, "plaintext": <string>,
//                  "nonce": <hex>}, ...],
//     "decrypt": [{"secret_key": <hex>, "public_key": <hex>, "payload": <string>}, ...],
//     "digest":  [{"conversation_key": <hex>, "nonce": <hex>, "pattern": <string>,
//                  "repeat": <n>}, ...],
//     "wrap":    [{"sender_secret": <hex>, "recipient": <hex>, "message": <string>,
//                  "kind": 1059 | 21059}, ...],
//     "unwrap":  [{"recipient_secret": <hex>, "event": <event object>}, ...],
//     "sign":    [{"secret_key": <hex>, "kind": <n>, "tags": [[...]], "content": <string>}, ...],
//     "nip04_encrypt": [{"secret_key": <hex>, "public_key": <hex>, "plaintext": <string>}, ...],
//     "nip04_decrypt": [{"secret_key": <hex>, "public_key": <hex>, "payload": <string>}, ...]
//   }
//   answer: {
//     "encrypt": [{"conversation_key": <hex>, "payload": <string>} | {"error": <string>}],
//     "decrypt": [{"plaintext": <string>} | {"error": <string>}],
//     "digest":  [{"payload_sha256": <hex>, "payload_len": <n>, "plaintext_sha256": <hex>}],
//     "wrap":    [<event JSON text>],
//     "unwrap":  [{"wrap_valid": <bool>, "rumor": <object>} | {"error": <string>}],
//     "sign":    [<event object>],
//     "nip04_encrypt": [<payload>],
//     "nip04_decrypt": [{"plaintext": <string>} | {"error": <string>}]
//   }
//
// `sign` and NIP-04 serve the NIP-90 job tests: a customer's kind 5050 request signed by
// nostr-tools, with parameters encrypted as NIP-90 specifies.
//
// nostr-tools' unwrapEvent knows only kind 1059. For kind 21059, which NIP-59 defines with the
// same structure, the oracle wraps and unwraps with the same steps and the same nostr-tools
// functions (createRumor, createSeal, nip44, verifyEvent), as the NIP's code sample does.

import { createHash } from 'node:crypto';
import { finalizeEvent, generateSecretKey, verifyEvent } from 'nostr-tools/pure';
import * as nip04 from 'nostr-tools/nip04';
import * as nip44 from 'nostr-tools/nip44';
import * as nip17 from 'nostr-tools/nip17';
import * as nip59 from 'nostr-tools/nip59';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const bytes = (hex) => Uint8Array.from(Buffer.from(hex, 'hex'));
const hex = (b) => Buffer.from(b).toString('hex');
const sha256 = (data) => createHash('sha256').update(data).digest('hex');
const copy = (event) => JSON.parse(JSON.stringify(event));
const attempt = (f) => {
  try {
    return f();
  } catch (error) {
    return { error: String(error?.message ?? error) };
  }
};
const key = (secret, pub) => nip44.v2.utils.getConversationKey(bytes(secret), pub);

const encrypt = (request.encrypt ?? []).map(({ secret_key, public_key, plaintext, nonce }) =>
  attempt(() => {
    const conversationKey = key(secret_key, public_key);
    return {
      conversation_key: hex(conversationKey),
      payload: nip44.v2.encrypt(plaintext, conversationKey, bytes(nonce)),
    };
  }),
);

const decrypt = (request.decrypt ?? []).map(({ secret_key, public_key, payload }) =>
  attempt(() => ({ plaintext: nip44.v2.decrypt(payload, key(secret_key, public_key)) })),
);

const digest = (request.digest ?? []).map(({ conversation_key, nonce, pattern, repeat }) => {
  const plaintext = pattern.repeat(repeat);
  const payload = nip44.v2.encrypt(plaintext, bytes(conversation_key), bytes(nonce));
  return {
    payload_sha256: sha256(payload),
    payload_len: payload.length,
    plaintext_sha256: sha256(plaintext),
  };
});

const nip44Decrypt = (event, secret) =>
  JSON.parse(nip44.v2.decrypt(event.content, key(secret, event.pubkey)));

const wrap = (request.wrap ?? []).map(({ sender_secret, recipient, message, kind }) => {
  if (kind === 1059) {
    return JSON.stringify(nip17.wrapEvent(bytes(sender_secret), { publicKey: recipient }, message));
  }
  const rumor = nip59.createRumor(
    { kind: 14, content: message, tags: [['p', recipient]] },
    bytes(sender_secret),
  );
  const seal = nip59.createSeal(rumor, bytes(sender_secret), recipient);
  const oneTime = generateSecretKey();
  const event = finalizeEvent(
    {
      kind,
      content: nip44.v2.encrypt(JSON.stringify(seal), key(hex(oneTime), recipient)),
      created_at: Math.round(Date.now() / 1000 - Math.random() * 2 * 24 * 60 * 60),
      tags: [['p', recipient]],
    },
    oneTime,
  );
  return JSON.stringify(event);
});

const unwrap = (request.unwrap ?? []).map(({ recipient_secret, event }) =>
  attempt(() => {
    const wrapValid = verifyEvent(copy(event));
    if (event.kind === 1059) {
      return { wrap_valid: wrapValid, rumor: nip17.unwrapEvent(copy(event), bytes(recipient_secret)) };
    }
    if (event.kind !== 21059) throw new Error(`not a gift wrap: kind ${event.kind}`);
    const seal = nip44Decrypt(event, recipient_secret);
    if (seal.kind !== 13) throw new Error(`unexpected seal kind ${seal.kind}`);
    if (!verifyEvent(seal)) throw new Error('seal signature is invalid');
    const rumor = nip44Decrypt(seal, recipient_secret);
    if (rumor.pubkey !== seal.pubkey) throw new Error('rumor pubkey does not match seal pubkey');
    return { wrap_valid: wrapValid, rumor };
  }),
);

const sign = (request.sign ?? []).map(({ secret_key, kind, tags, content }) =>
  finalizeEvent(
    { kind, tags: tags ?? [], content: content ?? '', created_at: Math.floor(Date.now() / 1000) },
    bytes(secret_key),
  ),
);

const nip04Encrypt = (request.nip04_encrypt ?? []).map(({ secret_key, public_key, plaintext }) =>
  nip04.encrypt(bytes(secret_key), public_key, plaintext),
);

const nip04Decrypt = (request.nip04_decrypt ?? []).map(({ secret_key, public_key, payload }) =>
  attempt(() => ({ plaintext: nip04.decrypt(bytes(secret_key), public_key, payload) })),
);

process.stdout.write(
  JSON.stringify({
    encrypt,
    decrypt,
    digest,
    wrap,
    unwrap,
    sign,
    nip04_encrypt: nip04Encrypt,
    nip04_decrypt: nip04Decrypt,
  }),
);
