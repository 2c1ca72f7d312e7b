// End to end: a real `provenance lookup serve` on 127.0.0.1 with the demo corpus ingested,
// Debian's Chromium in new headless mode with the unpacked extension, driven by
// playwright-core (no browser is downloaded). Runs the check from the extension's own page
// for each case and asserts what it shows, then from the toolbar popup and the context menu on
// a selection in a web page; screenshots go to e2e/out/.
//
// node e2e/run.mjs --provenance PATH/TO/provenance --corpus DIR
//   DIR holds events.jsonl and texts.json, as written by `lookup-corpus demo DIR` (provenance-fixtures).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { decode } from 'nostr-tools/nip19';

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

// Several signed records of one text, for the order of several matches: by key B (oldest; on
// the reader's list through a NIP-05 name), key C (on the server's list only) and key D (newest,
// on no list), signed a second apart with `provenance keygen` and `provenance sign`.
const several = 'Sourdough keeps longer than yeasted bread because the acids made by the bacteria slow the staling of the crumb and keep moulds away for several days.';
writeFileSync(join(work, 'several.txt'), several);
const signers = {};
const severalEvents = [];
for (const [i, who] of ['b', 'c', 'd'].entries()) {
  if (i > 0) await new Promise((resolve) => setTimeout(resolve, 1100));
  const keyFile = join(work, `${who}.nsec`);
  const made = spawnSync(provenance, ['keygen', '--out', keyFile, '--json'], { encoding: 'utf8' });
  signers[who] = JSON.parse(made.stdout.trim().split('\n')[0]).data;
  const signed = spawnSync(provenance, ['sign', '--output-file', join(work, 'several.txt'), '--model-name', 'qwen3:0.6b', '--key', keyFile], { encoding: 'utf8' });
  if (signed.status !== 0) throw new Error(`provenance sign: ${signed.stderr}`);
  severalEvents.push(JSON.parse(signed.stdout));
}
writeFileSync(join(work, 'several.jsonl'), severalEvents.map((e) => JSON.stringify(e)).join('\n') + '\n');
const ingest2 = spawnSync(provenance, ['lookup', 'ingest', '--db', db, join(work, 'several.jsonl')], { encoding: 'utf8' });
expect(ingest2.status === 0 && /3 indexed/.test(ingest2.stdout), `ingest: three signed records of one text (${ingest2.stdout.trim()})`);
writeFileSync(join(work, 'trust.txt'), `# the demo operator\n${texts.trusted_npub}\n# key C, trusted by the server only\n${signers.c.npub}\n`);

// 2. Serve it on a free loopback port; the first stdout line names the address.
const serve = (extra) => {
  const child = spawn(provenance, ['lookup', 'serve', '--db', db, '--listen', '127.0.0.1:0', '--trust', join(work, 'trust.txt'), ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const address = new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('server did not start within 20 s')), 20000);
    child.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return { child, address };
};
const main = serve([]);
// A second server whose body limit no lookup fits: it refuses every check (413).
const strict = serve(['--body-limit', '64']);
const server = main.child;
const base = await main.address;
const strictBase = await strict.address;

// 3. A NIP-05 endpoint on loopback for the reader's trust list: bob@127.0.0.1:PORT is key B.
const nip05Asked = [];
const nip05 = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  nip05Asked.push(url.pathname + url.search);
  const names = url.pathname === '/.well-known/nostr.json' && url.searchParams.get('name') === 'bob' ? { bob: signers.b.pubkey } : {};
  res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
  res.end(JSON.stringify({ names }));
});
await new Promise((resolve) => nip05.listen(0, '127.0.0.1', resolve));
const bob = `bob@127.0.0.1:${nip05.address().port}`;

// What the sentence's date says for a time (UTC, as the extension writes it).
const day = (t) => new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(new Date(t * 1000));
const short = (npub) => `${npub.slice(0, 11)}…${npub.slice(-6)}`;
const NO_RECORD = 'No signed record contains this text; that does not mean a person wrote it.';
const PROVEN_WHOLE = "The signature and the text were checked in your browser; the model, the time and the settings are the signer's statement.";
const PROVEN_PART = "The signature was checked in your browser, and the text against the fingerprints the signer recorded; the model, the time and the settings are the signer's statement.";

// WCAG 2 contrast of every piece of visible text on the page: its colour against the first
// opaque background under it (semi-transparent layers blended in). Returns the failures.
const contrastFailures = () => {
  const parse = (c) => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1,
  });
  const background = (e) => {
    const layers = [];
    for (let n = e; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a === 1) break; }
    }
    return layers.reduceRight((under, top) => over(top, under), { r: 255, g: 255, b: 255, a: 1 });
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const failures = [];
  let checked = 0;
  for (const e of document.querySelectorAll('body *')) {
    const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !e.getClientRects().length || getComputedStyle(e).visibility === 'hidden') continue;
    const bg = background(e);
    const fg = over(parse(getComputedStyle(e).color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    checked++;
    if (ratio < 4.5) failures.push(`${e.tagName.toLowerCase()}.${e.className} "${e.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return { checked, failures };
};

let context;
try {
  // 4. Chromium with the extension. New headless mode (--headless) loads extensions.
  context = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath,
    headless: true,
    viewport: { width: 540, height: 720 },
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
  const origin = `chrome-extension://${extensionId}`;

  // Contrast, all folds open (then closed again as they were).
  const checkContrast = async (page, what) => {
    await page.evaluate(() => document.querySelectorAll('details:not([open])').forEach((d) => { d.open = true; d.dataset.opened = 'for-contrast'; }));
    const { checked, failures } = await page.evaluate(contrastFailures);
    await page.evaluate(() => document.querySelectorAll('details[data-opened]').forEach((d) => { d.open = false; delete d.dataset.opened; }));
    expect(checked > 5 && failures.length === 0, `${what}: all ${checked} texts meet WCAG AA contrast (4.5:1) ${JSON.stringify(failures)}`);
  };

  // 5. The options page: the server (validated, tested, permission asked for elsewhere), and
  // the reader's trust list.
  const options = await context.newPage();
  await options.goto(`${origin}/options.html`);
  await options.waitForSelector('body[data-ready="true"]');
  const saveServer = async (value, button = '#save-server') => {
    await options.fill('#server', value);
    await options.$eval('#server-status', (e) => { e.textContent = ''; });
    await options.click(button);
    await options.waitForFunction(() => !['', 'Testing…'].includes(document.getElementById('server-status').textContent));
    return options.textContent('#server-status');
  };
  const stored = () => options.evaluate(() => chrome.storage.local.get(['server', 'trust']));
  let said = await saveServer('ftp://lookup.example');
  expect(/^Not saved: the address must start with http:\/\/ or https:\/\//.test(said), `options: a non-HTTP address is refused (${said})`);
  said = await saveServer('http://lookup.example:8787');
  expect(/^Not saved: use https:\/\/ for a server on another machine/.test(said), `options: plain http elsewhere is refused (${said})`);
  // A server elsewhere: the permission for its origin is asked for on Save; refused, nothing
  // is saved. (Headless Chromium shows no prompt to answer, so the answer is given here.)
  await options.evaluate(() => {
    globalThis.asked = [];
    chrome.permissions.request = async (p) => { globalThis.asked.push(p); return false; };
  });
  said = await saveServer('https://lookup.example:8443/');
  const asked = await options.evaluate(() => globalThis.asked);
  expect(JSON.stringify(asked) === JSON.stringify([{ origins: ['https://lookup.example:8443/*'] }]) && /^Not saved: without your permission/.test(said),
    `options: a server elsewhere asks for its origin when saved (${JSON.stringify(asked)}, ${said})`);
  expect((await stored()).server === undefined, 'options: a refused permission saves nothing');
  said = await saveServer('http://127.0.0.1:1', '#test-server');
  expect(/^Cannot reach it: .*Is it running/.test(said), `options: the test names a server that is down (${said})`);
  said = await saveServer(base, '#test-server');
  expect(said === 'Reachable: a lookup server holding 5 signed records.', `options: the test reaches the server (${said})`);
  said = await saveServer(`${base}/`);
  expect(said === `Saved: checks now go to ${base}.` && (await stored()).server === base, `options: the server is saved (${said})`);
  const saveTrust = async (value) => {
    await options.fill('#trust', value);
    await options.$eval('#trust-status', (e) => { e.textContent = ''; });
    await options.click('#save-trust');
    await options.waitForFunction(() => !['', 'Saving…'].includes(document.getElementById('trust-status').textContent));
    return options.textContent('#trust-status');
  };
  said = await saveTrust(`demo-operator ${texts.trusted_npub}\n${'0'.repeat(63)}5\n`);
  expect(said === 'Not saved: line 2: not an npub or a 64-hex public key.' && (await stored()).trust === undefined, `options: a bad line stops the save, with its line (${said})`);
  said = await saveTrust(`nobody@127.0.0.1:${nip05.address().port}\n`);
  expect(/^Not saved: line 1: .*no key for nobody/.test(said), `options: a NIP-05 name that does not resolve stops the save (${said})`);
  said = await saveTrust(`# mine\ndemo-operator ${texts.trusted_npub}  # pinned\n${bob}\n`);
  const keysShown = await options.$$eval('#trust-keys li', (lis) => lis.map((l) => l.textContent));
  expect(said === 'Saved: 2 keys on your trust list.' && nip05Asked.includes('/.well-known/nostr.json?name=bob'), `options: the trust list is saved, bob looked up over NIP-05 (${said})`);
  expect(keysShown[0] === `demo-operator: ${short(texts.trusted_npub)} (pinned)` && keysShown[1] === `${bob}: ${short(signers.b.npub)} (looked up over NIP-05)`, `options: the keys it holds are listed (${JSON.stringify(keysShown)})`);
  await checkContrast(options, 'options page');
  await options.screenshot({ path: join(outDir, 'options.png'), fullPage: true });

  // What the result page shows.
  const extractResults = () => ({
    status: document.getElementById('status').textContent,
    none: !!document.getElementById('none'),
    cards: [...document.querySelectorAll('#results section.card')].map((s) => ({
      tone: s.dataset.tone,
      badge: s.querySelector('.badge').textContent,
      summary: s.querySelector('.summary').textContent,
      proven: s.querySelector('.proven-line')?.textContent,
      todo: s.querySelector('.todo')?.textContent,
    })),
    matches: [...document.querySelectorAll('section.match')].map((s) => ({
      kind: s.dataset.kind,
      coverage: Number(s.dataset.coverage),
      npub: s.dataset.npub,
      model: s.dataset.model,
      time: s.dataset.time,
      tone: s.dataset.tone,
      badge: s.querySelector('.badge').textContent,
      summary: s.querySelector('.summary').textContent,
      marked: [...s.querySelectorAll('mark')].map((m) => m.textContent),
      statuses: [...s.querySelectorAll('.evidence li')].map((li) => `${li.dataset.code}=${li.dataset.status}@${li.dataset.by}`),
      best: [...s.querySelectorAll('details.claim')].map((d) => d.dataset.best),
      folded: [...s.querySelectorAll('details')].every((d) => !d.open),
    })),
    refused: [...document.querySelectorAll('section.refused')].map((s) => s.textContent),
    body: document.body.innerText,
  });
  const readResults = (page) => page.evaluate(extractResults);

  // Runs one check from the extension page; returns what the page shows. `keyboard`: tab from
  // the text to Check and press Enter, as a reader without a mouse does.
  const runCase = async (name, text, { tamper = false, keyboard = false, then = null } = {}) => {
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
    await page.goto(`${origin}/popup.html`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill('#text', text);
    if (keyboard) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement.id) === 'check', `${name}: Tab from the text reaches Check`);
      await page.keyboard.press('Enter');
    } else {
      await page.click('#check');
    }
    await page.waitForSelector('body[data-done="true"]', { timeout: 15000 });
    const shown = await readResults(page);
    await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
    await checkContrast(page, name);
    if (then) await then(page, shown);
    await page.close();
    return shown;
  };
  const oneCard = (name, r, tone, badge, sentence) => {
    const c = r.cards[0] || {};
    expect(r.cards.length === 1 && c.tone === tone && c.badge === badge, `${name}: one card, badge "${badge}" (${JSON.stringify(r.cards.map((x) => [x.tone, x.badge]))})`);
    expect(sentence instanceof RegExp ? sentence.test(c.summary) : c.summary === sentence, `${name}: the sentence (${c.summary})`);
  };
  const words = (name, r) => expect(!/AI-generated|authentic/i.test(r.body), `${name}: no "AI-generated", no "authentic"`);

  // The exact answer, by keyboard only; then the details fold and unfold (Enter), and the
  // identifiers copy and link to the event.
  let r = await runCase('exact', texts.answer, {
    keyboard: true,
    then: async (page) => {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => document.activeElement.tagName === 'SUMMARY' && document.activeElement.parentElement.dataset.subject);
      expect(focused === 'signature', `exact: the next Tab reaches the folded signature details (${focused})`);
      const idShown = () => page.evaluate(() => document.querySelector('details[data-subject="signature"] .event-id').checkVisibility());
      expect(!(await idShown()), 'exact: the details are folded at first');
      await page.keyboard.press('Enter');
      expect(await idShown(), 'exact: Enter unfolds them');
      await page.screenshot({ path: join(outDir, 'exact-details.png'), fullPage: true });
      await page.keyboard.press('Enter');
      expect(!(await idShown()), 'exact: Enter folds them again');
      // The text group's row: the browser's proof on top, the server's assertion below it.
      await page.click('details[data-subject="text"] > summary');
      await page.click('details[data-key="output.hash"] > summary');
      const evidence = await page.$$eval('details[data-key="output.hash"] .evidence li', (lis) => lis.map((l) => `${l.dataset.code}@${l.dataset.by}:${l.checkVisibility()}`));
      expect(JSON.stringify(evidence) === JSON.stringify(['output.hash.match@browser:true', 'output.hash.asserted@server:true']), `exact: unfolded, the browser's proof over the server's assertion, both shown (${evidence})`);
      const ids = await page.evaluate(() => ({
        shown: document.querySelector('.event-id').textContent,
        full: document.querySelector('.event-id').title,
        npub: document.querySelector('.ids .npub').textContent,
        nostr: document.querySelector('a.open-nostr').href,
        server: document.querySelector('a.open-server').href,
      }));
      expect(/^[0-9a-f]{8}…[0-9a-f]{8}$/.test(ids.shown) && ids.npub === short(texts.trusted_npub), `exact: ids and keys are shortened (${ids.shown}, ${ids.npub})`);
      const nevent = decode(ids.nostr.replace(/^nostr:/, ''));
      expect(nevent.type === 'nevent' && nevent.data.id === ids.full, `exact: "Open in a Nostr app" is the event's nevent (${ids.nostr.slice(0, 24)}…)`);
      const fromServer = await (await fetch(ids.server)).json();
      expect(ids.server === `${base}/v1/events/${ids.full}` && fromServer.id === ids.full, `exact: the server link opens the event (${ids.server})`);
      await page.click('details[data-subject="signature"] > summary');
      await page.click('button[aria-label="Copy event id"]');
      await page.waitForFunction(() => document.querySelector('button[aria-label="Copy event id"]').textContent !== 'Copy');
      const button = await page.textContent('button[aria-label="Copy event id"]');
      // Pasted back into the text field with the keyboard: what the clipboard holds.
      await page.fill('#text', '');
      await page.focus('#text');
      await page.keyboard.press('Control+V');
      const copied = await page.inputValue('#text');
      expect(button === 'Copied' && copied === ids.full, `exact: Copy puts the whole event id on the clipboard (${copied.slice(0, 12)}…)`);
    },
  });
  const m0 = r.matches[0] || {};
  expect(r.matches.length === 1 && m0.kind === 'exact' && m0.coverage === 1, `exact: one exact match (${JSON.stringify(r.matches.map((m) => m.kind))})`);
  oneCard('exact', r, 'trusted', 'On your trust list', 'A key on your trust list (demo-operator) signed an answer of gemma3:270m on 1 November 2026 that is exactly this text.');
  expect(r.cards[0] && r.cards[0].proven === PROVEN_WHOLE, `exact: what is proven and what is stated (${r.cards[0] && r.cards[0].proven})`);
  expect(m0.npub === texts.trusted_npub && m0.statuses.includes('signer.trust.listed=proven@server') && m0.statuses.includes('reader.trust.listed=proven@you'), 'exact: signer npub, on your list and the server\'s');
  expect(m0.model === 'gemma3:270m' && m0.time === '2026-11-01T00:00:00.000Z', `exact: model and time (${m0.model}, ${m0.time})`);
  expect(m0.best.includes('event.sig.valid=proven@browser') && m0.best.includes('output.hash.match=proven@browser') && !m0.best.some((b) => b.startsWith('output.hash.asserted')),
    `exact: one row per claim, the browser's proof winning (${JSON.stringify(m0.best)})`);
  expect(m0.folded, 'exact: all details folded at first');
  words('exact', r);

  r = await runCase('whitespace-variant', texts.other.replace(/ /g, '\u00a0 ').replace('moon', 'moon\n\n') + '\r\n');
  const v = r.matches[0] || {};
  expect(r.matches.length === 1 && v.kind === 'normalized', `whitespace/Unicode variant: normalised match (${JSON.stringify(r.matches.map((m) => m.kind))})`);
  oneCard('whitespace variant', r, 'neutral', 'Key on no trust list', `A key on no trust list (${short(v.npub || '')}) signed an answer of llama3.2:1b on 1 November 2026 that is this text (only spacing or Unicode form differ).`);
  expect((v.statuses || []).includes('signer.trust.unlisted=failed@server') && v.statuses.includes('output.hash.normalized=proven@browser'), 'variant: other signer is not trusted; the normalised text proven in the browser');

  r = await runCase('paragraph', texts.paragraph);
  expect(r.matches.length === 1 && r.matches[0].kind === 'partial' && r.matches[0].coverage === 1, `copied paragraph: partial, coverage 1 (${JSON.stringify(r.matches.map((m) => [m.kind, m.coverage]))})`);
  oneCard('paragraph', r, 'trusted', 'On your trust list', 'A key on your trust list (demo-operator) signed an answer of gemma3:270m on 1 November 2026 containing all of this text.');
  expect(r.cards[0] && r.cards[0].proven === PROVEN_PART, `paragraph: the text was checked against the signer's fingerprints (${r.cards[0] && r.cards[0].proven})`);

  r = await runCase('edited', texts.edited);
  const e = r.matches[0] || {};
  expect(r.matches.length === 1 && e.kind === 'partial' && e.coverage > 0.2 && e.coverage < 1, `edited copy: partial with coverage ${e.coverage}`);
  expect((e.marked || []).length > 0 && e.marked.every((t) => !/rapidly|hardens|light/.test(t)), `edited copy: changed words not highlighted (${JSON.stringify(e.marked)})`);
  oneCard('edited', r, 'trusted', 'On your trust list', `A key on your trust list (demo-operator) signed an answer of gemma3:270m on 1 November 2026 containing ${Math.round(e.coverage * 100)} % of this text (the highlighted parts).`);

  r = await runCase('unrelated', texts.unrelated);
  expect(r.matches.length === 0 && r.none, 'unrelated text: no match, and no claim about who wrote it');
  oneCard('unrelated', r, 'none', 'No signed record', NO_RECORD);
  words('unrelated', r);

  r = await runCase('forged-on-relay', texts.forged);
  expect(r.matches.length === 0, 'forged event (rejected at ingest): not found');
  oneCard('forged on a relay', r, 'none', 'No signed record', NO_RECORD);

  r = await runCase('tampered-answer', texts.answer, { tamper: true });
  expect(r.matches.length === 0 && r.refused.length === 1 && /does not verify/.test(r.refused[0]), 'event altered after the server: refused by the extension');
  oneCard('tampered answer', r, 'warning', 'Altered or forged record', 'Warning: the lookup server returned a record that does not hold up (the event id or signature does not verify). It was altered after it was signed, or forged; nothing it says can be relied on.');
  expect(r.cards[0] && r.cards[0].todo === 'No record that holds up was found for this text.', 'tampered answer: no "no record" card under the warning');
  words('tampered answer', r);

  // Several records of one text: yours on top (B, the oldest), the server's (C), then D.
  r = await runCase('several', several);
  const expected = [
    ['trusted', 'On your trust list', `A key on your trust list (${bob}) signed an answer of qwen3:0.6b on ${day(severalEvents[0].created_at)} that is exactly this text.`],
    ['server', "On the server's trust list", `A key on the lookup server's trust list but not on yours (${short(signers.c.npub)}) signed an answer of qwen3:0.6b on ${day(severalEvents[1].created_at)} that is exactly this text.`],
    ['neutral', 'Key on no trust list', `A key on no trust list (${short(signers.d.npub)}) signed an answer of qwen3:0.6b on ${day(severalEvents[2].created_at)} that is exactly this text.`],
  ];
  expect(JSON.stringify(r.matches.map((m) => [m.tone, m.badge, m.summary])) === JSON.stringify(expected), `several: three records, yours first, the server's second (${JSON.stringify(r.matches.map((m) => [m.tone, m.summary]))})`);
  expect(r.status === 'Checked: 3 signed records contain this text; trusted signers first, then the newest.', `several: the status says how many (${r.status})`);

  // A server that cannot be reached, and one that refuses: said, with what to do.
  await saveServer('http://127.0.0.1:1');
  r = await runCase('server-down', texts.answer);
  oneCard('server down', r, 'error', 'Not checked', 'The lookup server at http://127.0.0.1:1 could not be reached, so nothing was checked.');
  expect(r.cards[0] && /Check that it is running \(provenance lookup serve\) and that its address in the options is right\. Open the options/.test(r.cards[0].todo), `server down: what to do (${r.cards[0] && r.cards[0].todo})`);
  await saveServer(strictBase);
  r = await runCase('server-refuses', texts.answer);
  oneCard('server refuses', r, 'error', 'Not checked', new RegExp(`^The lookup server at ${strictBase.replace(/\./g, '\\.')} refused the check \\(413: .+\\)\\.$`));
  expect(r.cards[0] && /^The selection is too long for this server: select less text\./.test(r.cards[0].todo), `server refuses: what to do (${r.cards[0] && r.cards[0].todo})`);
  // A server elsewhere stored without its permission (as after the user withdrew it).
  await options.evaluate(() => chrome.storage.local.set({ server: 'https://lookup.example' }));
  r = await runCase('server-not-allowed', texts.answer);
  oneCard('server not allowed', r, 'error', 'Not checked', 'The extension may not ask https://lookup.example yet, so nothing was checked.');
  expect(r.cards[0] && /^Open the options and save the server again: the browser then asks you to allow it\./.test(r.cards[0].todo), `server not allowed: what to do (${r.cards[0] && r.cards[0].todo})`);
  said = await saveServer(base);
  expect(said === `Saved: checks now go to ${base}.`, 'options: the working server is set again');
  await options.close();

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
    expect(shown.matches.length === 1 && ['exact', 'normalized'].includes(m.kind) && m.coverage === 1 && m.npub === texts.trusted_npub && m.tone === 'trusted',
      `${what}: the selected answer is found, whole, from the trusted signer (${JSON.stringify(shown.matches.map((x) => [x.kind, x.coverage, x.tone]))}, ${shown.status})`);
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
  // `info`. The lookup server is the one saved on the options page.
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
  strict.child.kill('SIGTERM');
  nip05.close();
  rmSync(work, { recursive: true, force: true });
}

console.log(failures.length ? `\n${failures.length} failed` : '\nall passed');
process.exit(failures.length ? 1 : 0);
