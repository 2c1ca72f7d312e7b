// Bundles the few nostr-tools functions the extension uses into vendor/nostr.js (an ES
// module), so that the extension loads no code from the network. Run by `npm ci` (prepare).
import { build } from 'esbuild';

await build({
  entryPoints: ['src/nostr-entry.js'],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  outfile: 'vendor/nostr.js',
  legalComments: 'eof',
  logLevel: 'warning',
});
