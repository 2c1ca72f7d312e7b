// The nostr-tools functions the extension needs, bundled into vendor/nostr.js by build.mjs.
export { verifyEvent } from 'nostr-tools/pure';
export { npubEncode, neventEncode, decode } from 'nostr-tools/nip19';
export { sha256 } from '@noble/hashes/sha2.js';
