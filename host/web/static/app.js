// The dashboard: renders /api/status, then every status the server pushes
// on /events. It only reads.
'use strict';

const jobColumns = ['Job', 'State', 'Module', 'Workers', 'Ranks here', 'Submitter', 'Started', 'Time'];
const live = new Set(['preparing', 'running']);
let last = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor(s % 86400 / 3600) + ' h';
}

function clock(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], { hour12: false });
}

function state(s) { return el('span', { className: 'state', 'data-s': s }, s); }

function jobTime(j, now) {
  const start = Date.parse(j.started);
  const end = j.ended ? Date.parse(j.ended) : now;
  return duration(end - start);
}

function jobRow(j, now) {
  const ranks = el('div');
  for (const w of j.workers || []) {
    let label = 'rank ' + w.rank;
    if (w.state === 'exited' && w.exit !== 0) label += ' (' + w.exit + ')';
    const r = el('span', { className: 'rank', 'data-s': w.state, title: w.state + (w.error ? ': ' + w.error : '') }, label);
    ranks.append(r);
  }
  // Why it ended, if not by its ranks' exits (a cancel, a host's failure).
  const st = j.why ? el('div', {}, state(j.state), el('div', { className: 'why muted' }, j.why)) : state(j.state);
  const cells = [el('code', {}, j.id), st, j.module, String(j.n), ranks, j.submitter + (j.detached ? ' (detached)' : ''),
    clock(j.started), el('span', { className: 'age', 'data-started': j.started, 'data-ended': j.ended || '' }, jobTime(j, now))];
  const tr = el('tr', { 'data-job': j.id, 'data-state': j.state });
  cells.forEach((c, i) => tr.append(el('td', { 'data-label': jobColumns[i], className: i === 3 ? 'num' : '' }, c)));
  return tr;
}

const ckptColumns = ['Epoch', 'Status', 'Acknowledged', 'Triggered', 'Duration', 'Size', 'Incremental'];

function bytes(n) {
  if (!n) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
}

// took formats a Go duration (nanoseconds).
function took(ns) {
  if (!ns) return '';
  const ms = ns / 1e6;
  if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + ' ms';
  return (ms / 1000).toFixed(2) + ' s';
}

// historyTable is a table of columns with a row per [attributes, cells];
// the columns whose indexes text lists hold no numbers.
function historyTable(columns, rows, text) {
  const head = el('tr');
  for (const c of columns) head.append(el('th', { scope: 'col' }, c));
  const body = el('tbody');
  for (const [attrs, cells] of rows) {
    const tr = el('tr', attrs);
    cells.forEach((v, i) => tr.append(el('td', { 'data-label': columns[i], className: text.includes(i) ? '' : 'num' }, v)));
    body.append(tr);
  }
  return el('table', {}, el('thead', {}, head), body);
}

// checkpoints is a job's checkpoint history, newest first.
function checkpoints(j) {
  const list = (j.checkpoints || []).slice().reverse();
  const rows = list.map(c => [{ 'data-epoch': String(c.epoch), 'data-status': c.status, title: c.error || '' },
    [String(c.epoch), state(c.status), c.acked + '/' + c.of, clock(c.triggered), took(c.duration), bytes(c.size), bytes(c.incremental)]]);
  return el('div', { className: 'ckpts', 'data-ckpts': j.id },
    el('h3', {}, 'Checkpoints of ', el('code', {}, j.id), el('span', { className: 'muted' }, ' (newest ' + list.length + ')')),
    historyTable(ckptColumns, rows, [1]));
}

const recColumns = ['Incarnation', 'Status', 'Lost', 'Rolled back to', 'Restarted here', 'Began', 'Time to recover'];

// recoveries is a job's recoveries from a lost host, newest first: one
// not done is under way while the job runs, else it never finished.
function recoveries(j) {
  const rows = (j.recoveries || []).slice().reverse().map(r => {
    const status = r.took ? 'recovered' : live.has(j.state) ? 'recovering' : 'unfinished';
    const lost = r.lost || [];
    return [{ 'data-inc': String(r.incarnation), 'data-status': status, 'data-lost': lost.join(' '), 'data-epoch': String(r.epoch) },
      [String(r.incarnation), state(status), lost.map(h => 'host ' + h).join(', '), 'epoch ' + r.epoch,
        (r.moved || []).map(k => 'rank ' + k).join(', '), clock(r.began), took(r.took)]];
  });
  return el('div', { className: 'recs', 'data-recoveries': j.id },
    el('h3', {}, 'Recoveries of ', el('code', {}, j.id), el('span', { className: 'muted' }, ' (from a lost host)')),
    historyTable(recColumns, rows, [1, 2]));
}

function hostCard(h, now) {
  const card = el('section', { className: 'card', 'data-host': h.status ? h.status.host : h.addr });
  if (!h.status) {
    card.append(el('div', { className: 'host-head' }, el('h2', {}, h.addr), state(h.state || 'down')),
      el('p', { className: 'error' }, h.error || 'no answer'));
    return card;
  }
  const st = h.status;
  const jobs = (st.jobs || []).slice().sort((a, b) =>
    (live.has(b.state) - live.has(a.state)) || (Date.parse(b.started) - Date.parse(a.started)));
  const running = jobs.filter(j => live.has(j.state)).length;
  card.append(el('div', { className: 'host-head' },
    el('h2', {}, 'host ' + st.host),
    el('span', { className: 'muted' }, h.addr),
    el('span', { className: 'muted' }, 'up ', el('span', { className: 'age', 'data-started': st.started, 'data-ended': '' }, duration(now - Date.parse(st.started)))),
    el('span', { className: 'muted' }, running + ' running, ' + (jobs.length - running) + ' ended')));
  if (jobs.length === 0) {
    card.append(el('p', { className: 'muted' }, 'No jobs yet.'));
    return card;
  }
  const head = el('tr');
  for (const c of jobColumns) head.append(el('th', { scope: 'col' }, c));
  const body = el('tbody');
  for (const j of jobs) body.append(jobRow(j, now));
  card.append(el('table', {}, el('thead', {}, head), body));
  for (const j of jobs) {
    if ((j.recoveries || []).length) card.append(recoveries(j));
    if ((j.checkpoints || []).length) card.append(checkpoints(j));
  }
  return card;
}

function render(report) {
  last = report;
  const now = Date.now();
  const hosts = report.hosts || [];
  const main = document.getElementById('hosts');
  main.replaceChildren(...hosts.map(h => hostCard(h, now)));
  const clusters = [...new Set(hosts.filter(h => h.status && h.status.cluster).map(h => h.status.cluster))];
  document.getElementById('cluster').textContent = clusters.length ? 'cluster ' + clusters.join(', ') : '';
}

// Ages tick between pushes.
function tick() {
  const now = Date.now();
  for (const a of document.querySelectorAll('.age')) {
    if (a.dataset.ended) continue;
    a.textContent = duration(now - Date.parse(a.dataset.started));
  }
}

function setLive(s) {
  const p = document.getElementById('live');
  p.dataset.live = s;
  p.textContent = s;
}

function connect() {
  const es = new EventSource('/events');
  es.addEventListener('open', () => setLive('live'));
  es.addEventListener('error', () => setLive('lost'));
  es.addEventListener('status', e => render(JSON.parse(e.data)));
}

fetch('/api/status')
  .then(r => r.ok ? r.json() : Promise.reject(new Error('/api/status: ' + r.status)))
  .then(r => { if (!last) render(r); })
  .catch(e => setLive('lost: ' + e.message));
connect();
setInterval(tick, 1000);
