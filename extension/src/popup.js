// The result page: gets the selection, runs the check, and shows for each match one sentence
// and a badge, then the evidence grouped by subject (folded). It never says "AI-generated" or
// "authentic": only what a signed record shows.
import { check, LookupError } from './check.js';
import { loadSettings, permissionFor } from './settings.js';
import {
  summary, provenLine, trustBadge, claimGroups, groupState, rowState, shortId, shortNpub,
  timeText, NO_MATCH, FOOTNOTE, lookupFailure, refusedWarning,
} from './present.js';

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
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

function badge(tone, text) {
  return el('span', { class: `badge tone-${tone}` }, text);
}

function copyButton(value, what) {
  const b = el('button', { type: 'button', class: 'quiet copy', 'aria-label': `Copy ${what}`, 'data-value': value }, 'Copy');
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(value);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Copy failed';
    }
  });
  return b;
}

// The identifiers, shortened, each with a copy button; the event with its links.
function identifiers(m, server) {
  return el('dl', { class: 'ids' },
    el('dt', {}, 'Event'),
    el('dd', {},
      el('code', { class: 'event-id', title: m.id }, shortId(m.id)),
      copyButton(m.id, 'event id'),
      el('a', { href: `nostr:${m.nevent}`, class: 'open-nostr' }, 'Open in a Nostr app'),
      el('a', { href: `${server}/v1/events/${m.id}`, target: '_blank', class: 'open-server' }, 'Event JSON')),
    el('dt', {}, 'Signer key'),
    el('dd', {}, el('code', { class: 'npub', title: m.npub }, shortNpub(m.npub)), copyButton(m.npub, 'signer key')),
    el('dt', {}, 'Signed at'),
    el('dd', { class: 'time' }, `${timeText(m.createdAt)} (the signer's clock)`),
    el('dt', {}, 'Model'),
    el('dd', { class: 'model' }, `${m.model} (the signer's statement)`));
}

function groupsOf(m, result, server) {
  const wrap = el('div', { class: 'groups' });
  for (const g of claimGroups(m, result.hasOwnList)) {
    const state = groupState(g).map((st) => el('span', { class: `state st-${st.tone}` }, st.word));
    const rows = el('div', { class: 'rows' });
    for (const r of g.rows) {
      const evidence = el('ul', { class: 'evidence' });
      for (const c of r.evidence) {
        const by = { browser: 'your browser', you: 'your trust list', server: 'the lookup server' }[c.by];
        evidence.append(el('li', { 'data-code': c.code, 'data-status': c.status, 'data-by': c.by },
          ((st) => el('span', { class: `st st-${st.tone}` }, st.word))(rowState({ key: r.key, best: c })),
          `${c.detail} `, el('span', { class: 'by' }, `(${by}, `), el('code', {}, c.code), el('span', { class: 'by' }, ')')));
      }
      rows.append(el('details', { class: 'claim', 'data-key': r.key, 'data-best': `${r.best.code}=${r.best.status}@${r.best.by}` },
        el('summary', {}, el('span', { class: `st st-${r.tone}` }, r.word), r.label),
        evidence));
    }
    const body = g.id === 'signature' ? [identifiers(m, server), rows] : [rows];
    wrap.append(el('details', { class: 'group', 'data-subject': g.id },
      el('summary', {}, g.label, ...state),
      ...body));
  }
  return wrap;
}

function matchCard(m, result, server) {
  const b = trustBadge(m);
  return el('section', {
    class: 'card match', 'data-kind': m.kind, 'data-coverage': String(m.coverage.fraction), 'data-tone': b.tone,
    'data-npub': m.npub, 'data-model': m.model, 'data-time': m.time,
  },
  badge(b.tone, b.text),
  el('p', { class: 'summary' }, summary(m, result.hasOwnList)),
  el('p', { class: 'proven-line' }, provenLine(m)),
  m.coverage.fraction < 1 ? highlighted(result.normalized, result.tokens, m.coverage.ranges) : null,
  groupsOf(m, result, server));
}

function render(result, server) {
  const out = $('results');
  out.replaceChildren();
  for (const r of result.refused) {
    out.append(el('section', { class: 'card warning refused', 'data-tone': 'warning' },
      badge('warning', 'Altered or forged record'),
      el('p', { class: 'summary' }, refusedWarning(r)),
      result.accepted.length === 0 ? el('p', { class: 'todo' }, 'No record that holds up was found for this text.') : null,
      el('p', { class: 'todo' }, 'Event ', el('code', { title: r.id }, shortId(String(r.id))), ' ', copyButton(String(r.id), 'event id'))));
  }
  if (result.accepted.length === 0 && result.refused.length === 0) {
    out.append(el('section', { class: 'card none', id: 'none', 'data-tone': 'none' },
      badge('none', 'No signed record'),
      el('p', { class: 'summary' }, NO_MATCH),
      el('p', { class: 'todo' }, 'Most text has no record: one exists only where a model\'s operator signs its answers and this lookup server holds them.')));
  }
  for (const m of result.accepted) out.append(matchCard(m, result, server));
  if (result.accepted.length) out.append(el('p', { class: 'note' }, FOOTNOTE));
}

function renderFailure(error, server) {
  const f = lookupFailure(error, server);
  $('results').replaceChildren(el('section', { class: 'card error', id: 'failure', 'data-tone': 'error', 'data-kind': error.kind },
    badge('error', 'Not checked'),
    el('p', { class: 'summary' }, f.sentence),
    el('p', { class: 'todo' }, f.todo, ' ', el('a', { href: 'options.html', target: '_blank' }, 'Open the options'))));
}

async function run() {
  const text = $('text').value;
  document.body.dataset.done = 'false';
  if (!text.trim()) {
    $('status').textContent = 'Select or paste some text first.';
    document.body.dataset.done = 'true';
    return;
  }
  const { server, trust } = await loadSettings();
  $('status').textContent = 'Checking…';
  try {
    const permission = permissionFor(server);
    if (permission && !(await chrome.permissions.contains(permission))) throw new LookupError('permission', 'no permission');
    const result = await check(text, server, { trustList: trust });
    render(result, server);
    const n = result.accepted.length;
    $('status').textContent = result.refused.length && n === 0 ? 'Checked: a returned record did not hold up.'
      : n === 0 ? 'Checked: no signed record.'
      : n === 1 ? 'Checked: one signed record contains this text.'
        : `Checked: ${n} signed records contain this text; trusted signers first, then the newest.`;
  } catch (e) {
    renderFailure(e instanceof LookupError ? e : new LookupError('unreachable', e.message), server);
    $('status').textContent = 'Not checked.';
  }
  $('text').scrollTop = 0;
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
  const { server } = await loadSettings();
  $('server-name').textContent = `(${server.replace(/^https?:\/\//, '')})`;
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
