// The result page: gets the selection, runs the check, shows signer, model, time, claim
// statuses and coverage. It never says "AI-generated": only what a signed record shows.
import { check, DEFAULT_SERVER } from './check.js';

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function highlighted(normalized, tokens, ranges) {
  const p = el('p', { class: 'excerpt' });
  let pos = 0;
  for (const [first, end] of ranges) {
    const start = tokens[first].start;
    const stop = tokens[end - 1].end;
    p.append(normalized.slice(pos, start), el('mark', {}, normalized.slice(start, stop)));
    pos = stop;
  }
  p.append(normalized.slice(pos));
  return p;
}

const KIND = {
  exact: 'exact copy of a signed output',
  normalized: 'same text as a signed output (whitespace or Unicode form differs)',
  partial: 'part of a signed output',
};

function trustText(trusted) {
  if (trusted === true) return 'in the lookup server\'s trust list';
  if (trusted === false) return 'not in the lookup server\'s trust list';
  return 'unknown (the server has no trust list)';
}

function render(result) {
  const out = $('results');
  out.replaceChildren();
  if (result.accepted.length === 0) {
    out.append(el('p', { id: 'none' }, 'No signed record found for this text. That says nothing about who wrote it: most text has no record.'));
  }
  for (const m of result.accepted) {
    const pct = `${Math.round(m.coverage.fraction * 100)} %`;
    const claims = el('table', { class: 'claims' });
    // Checked in this browser first, then what the lookup server's verifier reported.
    for (const [by, list] of [['browser', m.local], ['server', m.claims]]) {
      for (const c of list) {
        claims.append(el('tr', {}, el('td', { class: c.status }, c.status), el('td', {}, c.code), el('td', { class: 'by' }, by), el('td', {}, c.detail)));
      }
    }
    out.append(el('section', { class: 'match', 'data-kind': m.kind, 'data-coverage': String(m.coverage.fraction) },
      el('h2', {}, `${KIND[m.kind]}: coverage ${pct}`),
      el('dl', {},
        el('dt', {}, 'Signer'), el('dd', { class: 'npub' }, m.npub),
        el('dt', {}, 'Trust'), el('dd', { class: 'trust' }, trustText(m.trusted)),
        el('dt', {}, 'Model'), el('dd', { class: 'model' }, m.model),
        el('dt', {}, 'Signed at'), el('dd', { class: 'time' }, m.time),
        el('dt', {}, 'Covered'), el('dd', { class: 'covered' }, `${m.coverage.matched} of ${m.coverage.total} fingerprints`)),
      highlighted(result.normalized, result.tokens, m.coverage.ranges),
      claims));
  }
  for (const r of result.refused) {
    out.append(el('section', { class: 'match refused' },
      el('h2', {}, 'Refused: a returned event did not verify in the browser'),
      el('p', {}, `${r.id}: ${r.reason}`)));
  }
  out.append(el('p', { class: 'hint' }, result.note || ''));
}

async function run() {
  const text = $('text').value;
  const server = $('server').value || DEFAULT_SERVER;
  await chrome.storage.local.set({ server });
  if (!text.trim()) {
    $('status').textContent = 'Select or paste some text first.';
    return;
  }
  $('status').textContent = 'Checking…';
  try {
    const result = await check(text, server);
    render(result);
    $('status').textContent = `Done: ${result.accepted.length} signed record(s), ${result.refused.length} refused.`;
  } catch (e) {
    $('status').textContent = `Lookup failed: ${e.message}`;
  }
  document.body.dataset.done = 'true';
}

async function selectionOfActiveTab() {
  try {
    const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
    if (!tab || !tab.id) return '';
    const [res] = await chrome.scripting.executeScript({ target: { tabId: tab.id }, func: () => String(getSelection()) });
    return (res && res.result) || '';
  } catch {
    return ''; // pages the extension may not script (chrome://, the store)
  }
}

async function init() {
  const { server } = await chrome.storage.local.get('server');
  $('server').value = server || DEFAULT_SERVER;
  const params = new URLSearchParams(location.search);
  let text = '';
  if (params.get('from') === 'menu') {
    ({ pending: text = '' } = await chrome.storage.session.get('pending'));
    await chrome.storage.session.remove('pending');
  } else {
    text = await selectionOfActiveTab();
  }
  $('text').value = text;
  $('check').addEventListener('click', run);
  if (text.trim()) await run();
  document.body.dataset.ready = 'true';
}

init();
