// End to end: a real `provenance lookup serve` on 127.0.0.1 with the demo corpus ingested,
// Debian's Chromium in new headless mode with the unpacked extension, driven by
// playwright-core (no browser is downloaded). Runs the check from the extension's own page
// for each case and asserts what it shows; screenshots go to e2e/out/.
//
// node e2e/run.mjs --provenance PATH/TO/provenance --corpus DIR
//   DIR holds events.jsonl and texts.json, as written by `lookup-corpus demo DIR` (testkit).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const extensionDir = join(here, '..');
const outDir = join(here, 'out');
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const provenance = args.provenance;
const corpus = args.corpus;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!provenance || !corpus) {
  console.error('usage: node e2e/run.mjs --provenance BIN --corpus DIR');
  process.exit(2);
}

const texts = JSON.parse(readFileSync(join(corpus, 'texts.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'provenance-e2e-'));
mkdirSync(outDir, { recursive: true });
const failures = [];
const expect = (cond, what) => {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures.push(what);
};

// 1. Index the corpus: the forged event is rejected (exit status 1: something did not verify).
const db = join(work, 'lookup.sqlite');
const ingest = spawnSync(provenance, ['lookup', 'ingest', '--db', db, join(corpus, 'events.jsonl')], { encoding: 'utf8' });
expect(ingest.status === 1 && /2 indexed, 0 already indexed, 1 rejected/.test(ingest.stdout), `ingest: 2 indexed, 1 forged rejected (${ingest.stdout.trim()})`);
writeFileSync(join(work, 'trust.txt'), `# the demo operator\n${texts.trusted_npub}\n`);

// 2. Serve it on a free loopback port; the first stdout line names the address.
const server = spawn(provenance, ['lookup', 'serve', '--db', db, '--listen', '127.0.0.1:0', '--trust', join(work, 'trust.txt')], { stdio: ['ignore', 'pipe', 'inherit'] });
const base = await new Promise((resolve, reject) => {
  let buf = '';
  const timer = setTimeout(() => reject(new Error('server did not start within 20 s')), 20000);
  server.stdout.on('data', (d) => {
    buf += d;
    const m = buf.match(/listening on (http:\/\/[0-9.:]+)/);
    if (m) { clearTimeout(timer); resolve(m[1]); }
  });
  server.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
});

let context;
try {
  // 3. Chromium with the extension. New headless mode (--headless) loads extensions.
  context = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath,
    headless: true,
    args: [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--disable-extensions-except=${extensionDir}`, `--load-extension=${extensionDir}`,
    ],
  });
  let [worker] = context.serviceWorkers();
  if (!worker) worker = await context.waitForEvent('serviceworker', { timeout: 15000 });
  const extensionId = new URL(worker.url()).host;
  expect(/^[a-p]{32}$/.test(extensionId), `extension loaded (${extensionId})`);

  // Runs one check from the extension page; returns what the page shows.
  const runCase = async (name, text, { tamper = false } = {}) => {
    const page = await context.newPage();
    if (tamper) {
      // A lookup server (or a proxy) that alters an event: the extension must refuse it.
      await page.route('**/v1/lookup', async (route) => {
        const resp = await route.fetch();
        const body = await resp.json();
        for (const m of body.matches) m.event.content = m.event.content.replace('gemma3:270m', 'gpt-5');
        await route.fulfill({ response: resp, json: body });
      });
    }
    await page.goto(`chrome-extension://${extensionId}/popup.html`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill('#server', base);
    await page.fill('#text', text);
    await page.click('#check');
    await page.waitForSelector('body[data-done="true"]', { timeout: 15000 });
    const shown = await page.evaluate(() => ({
      status: document.getElementById('status').textContent,
      none: !!document.getElementById('none'),
      matches: [...document.querySelectorAll('section.match:not(.refused)')].map((s) => ({
        kind: s.dataset.kind,
        coverage: Number(s.dataset.coverage),
        npub: s.querySelector('.npub').textContent,
        trust: s.querySelector('.trust').textContent,
        model: s.querySelector('.model').textContent,
        time: s.querySelector('.time').textContent,
        marked: [...s.querySelectorAll('mark')].map((m) => m.textContent),
        statuses: [...s.querySelectorAll('.claims tr')].map((r) => `${r.cells[1].textContent}=${r.cells[0].textContent}`),
      })),
      refused: [...document.querySelectorAll('section.refused')].map((s) => s.textContent),
      body: document.body.innerText,
    }));
    await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
    await page.close();
    return shown;
  };

  let r = await runCase('exact', texts.answer);
  const m0 = r.matches[0] || {};
  expect(r.matches.length === 1 && m0.kind === 'exact' && m0.coverage === 1, `exact: one exact match (${JSON.stringify(r.matches.map((m) => m.kind))})`);
  expect(m0.npub === texts.trusted_npub && /in the lookup server's trust list/.test(m0.trust) && !/not in/.test(m0.trust), 'exact: signer npub, trusted');
  expect(m0.model === 'gemma3:270m' && m0.time === '2026-11-01T00:00:00.000Z', `exact: model and time (${m0.model}, ${m0.time})`);
  expect((m0.statuses || []).includes('event.sig.valid=proven') && m0.statuses.includes('output.hash.match=proven'), 'exact: signature and output hash proven');
  // The only mention is the note's denial.
  expect(!r.body.replace('does not show that the text was AI-generated', '').includes('AI-generated'), 'exact: no bare "AI-generated"');

  r = await runCase('whitespace-variant', texts.other.replace(/ /g, '\u00a0 ').replace('moon', 'moon\n\n') + '\r\n');
  expect(r.matches.length === 1 && r.matches[0].kind === 'normalized', `whitespace/Unicode variant: normalised match (${JSON.stringify(r.matches.map((m) => m.kind))})`);
  expect(r.matches[0] && /not in the lookup server's trust list/.test(r.matches[0].trust), 'variant: other signer is not trusted');

  r = await runCase('paragraph', texts.paragraph);
  expect(r.matches.length === 1 && r.matches[0].kind === 'partial' && r.matches[0].coverage === 1, `copied paragraph: partial, coverage 1 (${JSON.stringify(r.matches.map((m) => [m.kind, m.coverage]))})`);

  r = await runCase('edited', texts.edited);
  const e = r.matches[0] || {};
  expect(r.matches.length === 1 && e.kind === 'partial' && e.coverage > 0.2 && e.coverage < 1, `edited copy: partial with coverage ${e.coverage}`);
  expect((e.marked || []).length > 0 && e.marked.every((t) => !/rapidly|hardens|light/.test(t)), `edited copy: changed words not highlighted (${JSON.stringify(e.marked)})`);

  r = await runCase('unrelated', texts.unrelated);
  expect(r.matches.length === 0 && r.none, 'unrelated text: no match, and no claim about who wrote it');

  r = await runCase('forged-on-relay', texts.forged);
  expect(r.matches.length === 0, 'forged event (rejected at ingest): not found');

  r = await runCase('tampered-answer', texts.answer, { tamper: true });
  expect(r.matches.length === 0 && r.refused.length === 1 && /does not verify/.test(r.refused[0]), 'event altered after the server: refused by the extension');
} finally {
  if (context) await context.close();
  server.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}

console.log(failures.length ? `\n${failures.length} failed` : '\nall passed');
process.exit(failures.length ? 1 : 0);
