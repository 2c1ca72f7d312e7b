// End to end: a real `provenance lookup serve` on 127.0.0.1 with the demo corpus ingested,
// Debian's Chromium in new headless mode with the unpacked extension, driven by
// playwright-core (no browser is downloaded). Runs the check from the extension's own page
// for each case and asserts what it shows, then from the toolbar popup and the context menu on
// a selection in a web page; screenshots go to e2e/out/.
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

  // What the result page shows.
  const extractResults = () => ({
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
  });
  const readResults = (page) => page.evaluate(extractResults);

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
    const shown = await readResults(page);
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

  // A web page that shows the answer (a paragraph each), with all of it selected. Served on
  // loopback, where the extension's host permission lets the toolbar popup read the selection
  // (on other sites the user's click on the button grants that through `activeTab`).
  const article = await context.newPage();
  await article.route(`${base}/article`, (route) => route.fulfill({ contentType: 'text/html', body: '<h1>An answer</h1><article></article><footer>Posted today.</footer>' }));
  await article.goto(`${base}/article`);
  const selected = await article.evaluate((text) => {
    const body = document.querySelector('article');
    for (const para of text.split('\n\n')) body.append(Object.assign(document.createElement('p'), { textContent: para }));
    const range = document.createRange();
    range.selectNodeContents(body);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    return String(getSelection());
  }, texts.answer);
  const sw = context.serviceWorkers().find((w) => w.url().includes(extensionId)) || worker;
  const found = (what, shown) => {
    const m = shown.matches[0] || {};
    expect(shown.matches.length === 1 && ['exact', 'normalized'].includes(m.kind) && m.coverage === 1 && m.npub === texts.trusted_npub,
      `${what}: the selected answer is found, whole, from the trusted signer (${JSON.stringify(shown.matches.map((x) => [x.kind, x.coverage]))}, ${shown.status})`);
  };

  // The toolbar button: `action.openPopup()` opens the same popup a click does. Playwright
  // does not attach to an action popup, so it is driven over a raw DevTools session.
  await article.bringToFront();
  const opening = await sw.evaluate(() => chrome.action.openPopup().then(() => 'opened', (e) => e.message));
  expect(opening === 'opened', `toolbar: the popup opens (${opening})`);
  const cdp = await context.newCDPSession(article);
  // `probe()` every 100 ms until it returns something truthy or `seconds` pass; its last value.
  const poll = async (seconds, probe) => {
    let value;
    for (let i = 0; i < seconds * 10 && !value; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      value = await probe();
    }
    return value;
  };
  const popupTarget = await poll(10, async () => (await cdp.send('Target.getTargets')).targetInfos.find((t) => t.url === `chrome-extension://${extensionId}/popup.html`));
  if (!popupTarget) throw new Error('toolbar: no popup target within 10 s');
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: popupTarget.targetId, flatten: false });
  const replies = new Map();
  let nextId = 1;
  cdp.on('Target.receivedMessageFromTarget', (e) => {
    const m = e.sessionId === sessionId && JSON.parse(e.message);
    if (m && replies.has(m.id)) replies.get(m.id)(m);
  });
  // Evaluates a function of the popup's document there; returns its value.
  const inPopup = (fn) => new Promise((resolve, reject) => {
    const id = nextId++;
    replies.set(id, (m) => (m.error || m.result.exceptionDetails ? reject(new Error(JSON.stringify(m.error || m.result.exceptionDetails))) : resolve(m.result.result.value)));
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method: 'Runtime.evaluate', params: { expression: `(${fn})()`, returnByValue: true } }) });
  });
  const done = await poll(15, () => inPopup(() => document.body?.dataset.done === 'true'));
  expect(done, 'toolbar: the popup runs the check on its own');
  expect((await inPopup(() => document.getElementById('text').value)) === selected, 'toolbar: the popup takes the selection from the active tab');
  found('toolbar', await inPopup(extractResults));
  await cdp.send('Target.closeTarget', { targetId: popupTarget.targetId });
  await cdp.detach();

  // The context menu. The selection as Chromium fills `selectionText` for a click; headless
  // Chromium draws no menu to click, so the test calls the worker's click listener with that
  // `info`. The lookup server is the one the cases above stored from the result page.
  const menu = await sw.evaluate(() => new Promise((resolve) => chrome.contextMenus.update('provenance-check', {}, () => resolve(chrome.runtime.lastError ? chrome.runtime.lastError.message : 'exists'))));
  expect(menu === 'exists', `context menu: the item was created at install (${menu})`);
  expect(await sw.evaluate(() => chrome.contextMenus.onClicked.hasListener(globalThis.onMenuClick)), 'context menu: clicks reach the listener the test calls');
  const opened = context.waitForEvent('page', { timeout: 15000 });
  await sw.evaluate((selectionText) => globalThis.onMenuClick({ menuItemId: 'provenance-check', selectionText }), selected);
  const popup = await opened;
  await popup.waitForSelector('body[data-done="true"]', { timeout: 15000 });
  expect(new URL(popup.url()).search === '?from=menu', `context menu: opens the result page for the selection (${popup.url()})`);
  expect((await popup.inputValue('#text')) === selected, 'context menu: the page shows the selected text');
  found('context menu', await readResults(popup));
  const left = await sw.evaluate(() => chrome.storage.session.get('pending'));
  expect(left.pending === undefined, 'context menu: the selection does not stay in session storage');
  await popup.screenshot({ path: join(outDir, 'context-menu.png'), fullPage: true });
  await Promise.all([popup.close(), article.close()]);
} finally {
  if (context) await context.close();
  server.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}

console.log(failures.length ? `\n${failures.length} failed` : '\nall passed');
process.exit(failures.length ? 1 : 0);
