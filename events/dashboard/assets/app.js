// filecast dashboard. Plain JavaScript, no dependencies, nothing loaded from
// other sites. Every value that comes from the hub (file names above all)
// reaches the page through textContent or a property, never as HTML.
//
// Routes used, all relative to the page:
//   dashboard/stats                 {mcp_sessions, sse_subscribers, workspaces[], version, server_time,
//                                    problems: [{code, workspace?, message, since}],
//                                    watchers: [{workspace, watcher, poll_interval_ms?, reason?}]}
//   v1/workspaces                   {workspaces: [{name, head}]}
//   v1/workspaces/{ws}/events       SSE: id = seq, event = type, data = event JSON
//   v1/workspaces/{ws}/locks        {locks: [{workspace, path, holder, mode, fencing_token, expires_at}]}
//                                   (a bare array is accepted too; 404 means "not served by this hub")
//   v1/webhooks                     [{id, url, workspace, status, reason, stats?}] or {webhooks: [...]}
//   v1/webhooks/{id}/deliveries     [{status, latency_ms, response_code, error, time, path}] or {deliveries: [...]}
// See summarizeHook for the webhook fields read.
'use strict';

(() => {
  const MAX_ROWS = 500;            // rows kept in the event list
  const BACKLOG = 100;             // events replayed per workspace when a stream (re)starts
  const POLL_MS = 2000;            // stats and locks
  const HOOK_POLL_MS = 5000;       // webhooks
  const UNREACHABLE_AFTER_MS = 3000;
  const MAX_STREAMS = 4;           // browsers allow ~6 HTTP/1.1 connections per host
  const MAX_LOCKS = 200;
  const MAX_HOOKS = 20;
  const TYPES = [
    'file.created', 'file.updated', 'file.deleted', 'file.moved',
    'lock.acquired', 'lock.released', 'lock.expiring', 'lock.expired',
  ];

  const params = new URLSearchParams(location.search);
  const token = params.get('token') || params.get('access_token') || '';

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const str = (v) => (typeof v === 'string' ? v : (v === undefined || v === null ? '' : String(v)));
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const shortType = (t) => str(t).replace(/^(file|lock)\./, '');

  const state = {
    heads: new Map(),          // workspace → head seq, from v1/workspaces
    names: [],                 // workspace names in list order
    statsNames: '',            // stats.workspaces joined, to notice changes
    statsOK: null,             // null before the first answer
    statsDown: false,          // the last stats request could not reach the hub
    downSince: null,
    authError: false,
    skew: 0,                   // server clock − local clock, ms
    streams: new Map(),        // workspace → stream
    rows: [],                  // displayed events, newest first: {t, ws, seq, tr}
    seen: new Set(),           // ws + ':' + seq of displayed events
    queue: [],
    flushing: false,
    locks: [],
    lockCells: [],
    filterError: '',
  };

  // ---- HTTP ---------------------------------------------------------------

  // poller runs fn now and then every ms after each run ends; the returned
  // function runs it again at once (later, if a run is in flight).
  function poller(fn, ms) {
    let timer = null;
    let running = false;
    let again = false;
    const run = async () => {
      clearTimeout(timer);
      if (running) { again = true; return; }
      running = true;
      try { await fn(); } catch (_) { /* the next run retries */ }
      running = false;
      if (again) { again = false; run(); return; }
      timer = setTimeout(run, ms);
    };
    return run;
  }

  async function api(path) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const res = await fetch(path, { headers, cache: 'no-store' });
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    return { status: res.status, ok: res.ok, body };
  }
  const errCode = (body) => str(body && body.error && body.error.code);
  const errMsg = (body) => str(body && body.error && body.error.message);
  const serverNow = () => Date.now() + state.skew;

  // ---- filters ------------------------------------------------------------

  function filters() {
    const ws = $('f-ws').value;
    const paths = $('f-path').value.split(',').map((p) => p.trim()).filter(Boolean);
    const types = [...document.querySelectorAll('#f-types input:checked')].map((i) => i.value);
    return { ws, paths, types };
  }

  function buildTypeBoxes() {
    const box = $('f-types');
    for (const t of TYPES) {
      const label = el('label');
      const input = el('input');
      input.type = 'checkbox';
      input.value = t;
      input.checked = true;
      label.append(input, el('span', 'type-name t-' + shortType(t), shortType(t)));
      label.title = t;
      box.append(label);
    }
  }

  function wsTargets() {
    const f = filters();
    if (f.ws) return { list: state.heads.has(f.ws) ? [f.ws] : [], total: 1 };
    return { list: state.names.slice(0, MAX_STREAMS), total: state.names.length };
  }

  // ---- workspaces ---------------------------------------------------------

  async function loadWorkspaces() {
    let r;
    try { r = await api('v1/workspaces'); } catch (_) { return; }
    if (r.status === 401) { state.authError = true; updateStatus(); return; }
    if (!r.ok || !r.body) return;
    const list = Array.isArray(r.body) ? r.body : (Array.isArray(r.body.workspaces) ? r.body.workspaces : []);
    state.heads.clear();
    state.names = [];
    for (const w of list) {
      const name = typeof w === 'string' ? w : str(w && w.name);
      if (!name) continue;
      state.names.push(name);
      state.heads.set(name, num(w && w.head));
    }
    const sel = $('f-ws');
    const current = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    for (const name of state.names) {
      const o = el('option', null, name);
      o.value = name;
      sel.append(o);
    }
    sel.value = state.names.includes(current) ? current : '';
    $('s-ws').textContent = String(state.names.length);
    syncStreams(false);
    refreshLocks();
  }

  // ---- event streams ------------------------------------------------------

  // syncStreams opens and closes streams to follow the selected
  // workspaces; with reset it restarts them all and clears the list (the
  // filters changed).
  function syncStreams(reset) {
    const f = filters();
    const { list, total } = wsTargets();
    const want = f.types.length ? new Set(list) : new Set();
    for (const [ws, s] of state.streams) {
      if (reset || !want.has(ws)) closeStream(s);
    }
    if (reset) refreshLocks();
    if (reset) clearRows();
    for (const ws of want) {
      if (!state.streams.has(ws)) openStream(ws, f);
    }
    const note = $('stream-note');
    if (!f.types.length) {
      note.textContent = 'No event types selected.';
      note.hidden = false;
    } else if (!f.ws && total > list.length) {
      note.textContent = 'Following the first ' + list.length + ' of ' + total +
        ' workspaces (a browser keeps few connections to one hub); choose a workspace to follow another.';
      note.hidden = false;
    } else {
      note.hidden = true;
    }
    updateStatus();
  }

  function openStream(ws, f) {
    const head = state.heads.get(ws);
    const s = {
      ws, f, es: null, open: false, everOpened: false, blocked: false,
      downSince: Date.now(), lastSeq: null, attempt: 0, timer: null,
      // Replay a little history, so that the list is not empty at first.
      after: head === null || head === undefined ? null : Math.max(0, head - BACKLOG),
      liveAfter: head === null || head === undefined ? 0 : head,
    };
    state.streams.set(ws, s);
    connect(s);
  }

  function closeStream(s) {
    clearTimeout(s.timer);
    if (s.es) s.es.close();
    state.streams.delete(s.ws);
  }

  function streamURL(s, after) {
    const q = new URLSearchParams();
    if (s.f.types.length < TYPES.length) for (const t of s.f.types) q.append('type', t);
    for (const p of s.f.paths) q.append('path', p);
    if (after !== null && after !== undefined) q.set('last_event_id', String(after));
    if (token) q.set('access_token', token);
    const qs = q.toString();
    return 'v1/workspaces/' + encodeURIComponent(s.ws) + '/events' + (qs ? '?' + qs : '');
  }

  function connect(s) {
    clearTimeout(s.timer);
    s.timer = null;
    const url = streamURL(s, s.lastSeq !== null ? s.lastSeq : s.after);
    const es = new EventSource(url);
    s.es = es;
    const current = () => state.streams.get(s.ws) === s && s.es === es;
    es.onopen = () => {
      if (!current()) return;
      s.open = true;
      s.everOpened = true;
      s.downSince = null;
      s.attempt = 0;
      setFilterError('');
      updateStatus();
      refreshStats(); // the subscriber count now includes this stream
    };
    const onEvent = (m) => {
      if (!current()) return;
      let ev;
      try { ev = JSON.parse(m.data); } catch (_) { return; }
      if (!ev || typeof ev !== 'object') return;
      const seq = num(ev.seq);
      if (seq !== null) s.lastSeq = seq;
      enqueue(ev, s, seq !== null && seq > s.liveAfter);
    };
    es.onmessage = onEvent;
    for (const t of TYPES) es.addEventListener(t, onEvent);
    es.onerror = () => {
      if (!current()) { es.close(); return; }
      s.open = false;
      if (s.downSince === null) s.downSince = Date.now();
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error): find out why, then decide.
        diagnose(s, es, url);
      }
      updateStatus();
    };
  }

  async function diagnose(s, es, url) {
    const current = () => state.streams.get(s.ws) === s && s.es === es;
    const ctl = new AbortController();
    let res;
    try {
      const headers = { Accept: 'text/event-stream' };
      if (token) headers.Authorization = 'Bearer ' + token;
      res = await fetch(url, { headers, cache: 'no-store', signal: ctl.signal });
    } catch (_) {
      if (current()) retry(s);
      return;
    }
    if (res.ok) {
      ctl.abort();
      if (current()) retry(s);
      return;
    }
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!current()) return;
    const code = errCode(body);
    if (res.status === 401) {
      state.authError = true;
      retry(s, 10000);
    } else if (res.status === 410 || code === 'cursor_expired') {
      s.lastSeq = null;
      s.after = null;
      s.liveAfter = 0;
      showStreamNote('Some events of ' + s.ws + ' were no longer in the log; following live events from now.');
      retry(s, 0);
    } else if (res.status === 400) {
      s.blocked = true;
      s.downSince = null;
      setFilterError(errMsg(body) || 'The hub refused these filters.');
    } else if (code === 'unknown_workspace') {
      s.blocked = true;
      s.downSince = null;
      loadWorkspaces();
    } else {
      retry(s);
    }
    updateStatus();
  }

  function retry(s, delay) {
    if (delay === undefined) {
      delay = Math.min(10000, 500 * 2 ** s.attempt) * (0.8 + Math.random() * 0.4);
      s.attempt++;
    }
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      if (state.streams.get(s.ws) === s) connect(s);
    }, delay);
  }

  // kick reconnects at once the streams waiting for a retry, when the hub
  // answers again.
  function kick() {
    for (const s of state.streams.values()) {
      if (s.timer !== null && !s.blocked) connect(s);
    }
  }

  function showStreamNote(text) {
    const note = $('stream-note');
    note.textContent = text;
    note.hidden = false;
  }

  function setFilterError(text) {
    if (state.filterError === text) return;
    state.filterError = text;
    const p = $('filter-error');
    p.textContent = text;
    p.hidden = !text;
    $('f-path').setAttribute('aria-invalid', text ? 'true' : 'false');
  }

  // ---- event list ---------------------------------------------------------

  function enqueue(ev, s, live) {
    state.queue.push({ ev, ws: s.ws, live });
    if (!state.flushing) {
      state.flushing = true;
      requestAnimationFrame(flush);
    }
  }

  function flush() {
    state.flushing = false;
    const q = state.queue;
    state.queue = [];
    for (const { ev, ws, live } of q) {
      const w = str(ev.workspace) || ws;
      const seq = num(ev.seq);
      const key = w + ':' + (seq === null ? str(ev.event_id) : seq);
      if (state.seen.has(key)) continue;
      state.seen.add(key);
      const t = Date.parse(str(ev.timestamp));
      const row = { t: Number.isFinite(t) ? t : serverNow(), ws: w, seq: seq || 0, key, tr: renderEvent(ev, w, live) };
      const i = insertIndex(row);
      const tbody = $('events').tBodies[0];
      tbody.insertBefore(row.tr, state.rows[i] ? state.rows[i].tr : null);
      state.rows.splice(i, 0, row);
    }
    while (state.rows.length > MAX_ROWS) {
      const old = state.rows.pop();
      old.tr.remove();
      state.seen.delete(old.key);
    }
    renderCount();
  }

  // insertIndex keeps the rows newest first: by timestamp, then workspace
  // and seq.
  function insertIndex(row) {
    const newer = (a, b) => a.t !== b.t ? a.t > b.t : (a.ws !== b.ws ? a.ws > b.ws : a.seq > b.seq);
    let lo = 0;
    let hi = state.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (newer(state.rows[mid], row)) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function clearRows() {
    for (const r of state.rows) r.tr.remove();
    state.rows = [];
    state.seen.clear();
    state.queue = [];
    renderCount();
  }

  function renderCount() {
    const n = state.rows.length;
    $('event-count').textContent = n ? '(' + n + (n >= MAX_ROWS ? ', the newest kept' : '') + ')' : '';
    $('events-empty').hidden = n > 0;
  }

  function pad(n, w) { return String(n).padStart(w || 2, '0'); }

  function clock(ms) {
    const d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function humanSize(n) {
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let u = -1;
    do { v /= 1024; u++; } while (v >= 1024 && u < units.length - 1);
    return (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[u];
  }

  function renderEvent(ev, ws, live) {
    const tr = el('tr', live ? 'ev fresh' : 'ev');
    const type = str(ev.type);
    tr.dataset.type = type;

    const t = Date.parse(str(ev.timestamp));
    const time = el('td', 'time', Number.isFinite(t) ? clock(t) + '.' + pad(new Date(t).getMilliseconds(), 3) : '');
    time.title = str(ev.timestamp);

    const typeCell = el('td', 'type-cell');
    typeCell.append(el('span', 'type t-' + shortType(type), type || '?'));
    if (ev.conflict === true) {
      const b = el('span', 'badge', 'conflict');
      b.title = 'changed by someone else while exclusively locked';
      typeCell.append(b);
    }

    const pathCell = el('td', 'path');
    pathCell.append(el('span', 'p', str(ev.path)));
    if (ev.old_path) {
      const old = el('span', 'old', '← ' + str(ev.old_path));
      old.title = 'moved from';
      pathCell.append(old);
    }

    const size = num(ev.size);
    const sizeCell = el('td', 'num size', size === null ? '' : humanSize(size));
    if (size !== null) sizeCell.title = size + ' bytes';

    const lockCell = el('td', 'lock');
    if (ev.lock && typeof ev.lock === 'object') {
      lockCell.append(el('span', null, str(ev.lock.holder)));
      const fence = num(ev.lock.fencing_token);
      if (fence !== null) lockCell.append(el('span', 'sep', ' #' + fence));
      if (ev.lock.mode) lockCell.title = str(ev.lock.mode);
    }
    const until = Date.parse(str(ev.expires_at));
    if (Number.isFinite(until)) lockCell.append(el('span', 'until', 'until ' + clock(until)));

    tr.append(time, typeCell, el('td', 'ws', ws), pathCell, sizeCell, el('td', 'actor', str(ev.actor)), lockCell);
    return tr;
  }

  // ---- status -------------------------------------------------------------

  function computeStatus() {
    if (state.authError) return 'unauthorized';
    if (state.statsDown) return 'unreachable';
    const now = Date.now();
    let down = false;
    let long = false;
    let ever = false;
    for (const s of state.streams.values()) {
      if (s.blocked) continue;
      if (s.everOpened) ever = true;
      if (!s.open) {
        down = true;
        if (s.downSince !== null && now - s.downSince > UNREACHABLE_AFTER_MS) long = true;
      }
    }
    if (long) return 'unreachable';
    if (state.statsOK === null) return 'connecting';
    if (down) return ever ? 'reconnecting' : 'connecting';
    return 'live';
  }

  const LABELS = {
    live: 'live', connecting: 'connecting', reconnecting: 'reconnecting',
    unreachable: 'hub unreachable', unauthorized: 'token needed',
  };

  function updateStatus() {
    const st = computeStatus();
    const pill = $('status');
    if (pill.dataset.state !== st) {
      pill.dataset.state = st;
      document.body.dataset.state = st;
      pill.textContent = LABELS[st];
    }
    const banner = $('banner');
    if (st === 'unreachable') {
      if (state.downSince === null) state.downSince = Date.now();
      banner.textContent = 'The hub at ' + location.host + ' is unreachable since ' + clock(state.downSince) +
        '. Retrying… what is shown below may be out of date.';
      banner.hidden = false;
    } else if (st === 'unauthorized') {
      banner.textContent = 'The hub needs a token: open this page as ' + location.origin + location.pathname +
        '?token=YOUR_TOKEN';
      banner.hidden = false;
    } else {
      state.downSince = null;
      banner.hidden = true;
    }
    let own = 0;
    for (const s of state.streams.values()) if (s.open) own++;
    $('s-own').textContent = String(own);
  }

  // ---- stats --------------------------------------------------------------

  async function pollStats() {
    const t0 = Date.now();
    const wasDown = state.statsDown;
    try {
      const r = await api('dashboard/stats');
      // 502–504 come from a proxy in front of a hub that is down; any
      // other answer means the hub itself is there.
      state.statsDown = r.status >= 502 && r.status <= 504;
      if (!state.statsDown && state.statsOK === null) state.statsOK = true;
      if (r.status === 401) {
        state.authError = true;
      } else if (r.ok && r.body) {
        const b = r.body;
        state.authError = false;
        const st = Date.parse(str(b.server_time));
        if (Number.isFinite(st)) state.skew = st - (t0 + Date.now()) / 2;
        $('s-mcp').textContent = num(b.mcp_sessions) === null ? '–' : String(b.mcp_sessions);
        $('s-sse').textContent = num(b.sse_subscribers) === null ? '–' : String(b.sse_subscribers);
        $('version').textContent = b.version ? 'hub ' + str(b.version) : '';
        renderHealth(Array.isArray(b.problems) ? b.problems : []);
        renderWatchers(Array.isArray(b.watchers) ? b.watchers : []);
        const names = Array.isArray(b.workspaces) ? b.workspaces.map(str).join('\n') : '';
        if (names !== state.statsNames) {
          state.statsNames = names;
          loadWorkspaces();
        }
      }
    } catch (_) {
      state.statsDown = true;
    }
    if (wasDown && !state.statsDown) {
      kick();
      loadWorkspaces();
    }
    updateStatus();
  }

  const refreshStats = poller(pollStats, POLL_MS);

  // How each workspace is watched: notifications, polling (and how
  // often), or both; why it polls shows on hover.
  function renderWatchers(list) {
    const box = $('watchers');
    const text = list.map((x) => [x.workspace, x.watcher, x.poll_interval_ms, x.reason].map(str).join('\t')).join('\n');
    if (box.dataset.text === text) return;
    box.dataset.text = text;
    box.replaceChildren();
    for (const x of list) {
      let what = str(x.watcher);
      const ms = num(x.poll_interval_ms);
      if (what === 'notify') what = 'notifications';
      else if (what === 'notify+poll') what = 'notifications + polling';
      else if (what === 'poll') what = 'polling';
      if (ms) what += ', every ' + (ms % 1000 === 0 ? ms / 1000 + ' s' : ms + ' ms');
      const dd = el('dd', null, what);
      if (x.reason) dd.title = str(x.reason);
      box.append(el('dt', null, str(x.workspace)), dd);
    }
  }

  // What keeps the hub from serving everything: a workspace folder that
  // is missing, an event log that is full. Shown until it passes.
  const PROBLEM_TITLES = {
    workspace_unavailable: 'Workspace unavailable',
    insufficient_storage: 'Event log full',
  };

  function renderHealth(problems) {
    const box = $('health');
    const text = problems.map((p) => str(p.code) + str(p.workspace) + str(p.message)).join('\n');
    if (box.dataset.text === text) return;
    box.dataset.text = text;
    box.textContent = '';
    if (problems.length === 0) {
      box.hidden = true;
      return;
    }
    box.appendChild(el('span', null, 'The hub is degraded; reads and the event stream keep working.'));
    const ul = el('ul');
    for (const p of problems) {
      const title = PROBLEM_TITLES[str(p.code)] || str(p.code);
      const since = Date.parse(str(p.since));
      let line = title + (p.workspace ? ' (' + str(p.workspace) + ')' : '');
      if (Number.isFinite(since)) line += ' since ' + clock(since);
      ul.appendChild(el('li', null, line + ': ' + str(p.message)));
    }
    box.appendChild(ul);
    box.hidden = false;
  }

  // ---- locks --------------------------------------------------------------

  async function pollLocks() {
    const { list } = wsTargets();
    const found = [];
    let unsupported = false;
    await Promise.all(list.map(async (ws) => {
      let r;
      try { r = await api('v1/workspaces/' + encodeURIComponent(ws) + '/locks'); } catch (_) { return; }
      if (r.status === 404 || r.status === 405) {
        if (errCode(r.body) !== 'unknown_workspace') unsupported = true;
        return;
      }
      if (!r.ok || !r.body) return;
      const leases = Array.isArray(r.body) ? r.body
        : (Array.isArray(r.body.locks) ? r.body.locks : (Array.isArray(r.body.leases) ? r.body.leases : []));
      for (const l of leases) if (l && typeof l === 'object') found.push({ ws, l });
    }));
    found.sort((a, b) => (a.ws + '\n' + str(a.l.path)).localeCompare(b.ws + '\n' + str(b.l.path)));
    renderLocks(found.slice(0, MAX_LOCKS), unsupported, list.length > 1);
  }
  const refreshLocks = poller(pollLocks, POLL_MS);

  function renderLocks(found, unsupported, showWs) {
    const tbody = $('locks').tBodies[0];
    tbody.replaceChildren();
    state.lockCells = [];
    for (const { ws, l } of found) {
      const tr = el('tr');
      const path = el('td');
      if (showWs) path.append(el('span', 'ws', ws));
      path.append(el('span', null, str(l.path)));
      const fence = num(l.fencing_token);
      const left = el('td', 'num left');
      const mode = el('td', null, l.mode === 'exclusive' ? 'excl' : str(l.mode));
      mode.title = str(l.mode);
      tr.append(path, el('td', null, str(l.holder)), mode,
        el('td', 'num', fence === null ? '' : fence), left);
      tbody.append(tr);
      state.lockCells.push({ tr, left, exp: Date.parse(str(l.expires_at)) });
    }
    tickLocks();
    $('lock-count').textContent = found.length ? '(' + found.length + ')' : '';
    const empty = $('locks-empty');
    empty.textContent = unsupported ? 'Lock listing is not served by this hub.' : 'No locks held.';
    empty.hidden = found.length > 0;
    $('locks').hidden = found.length === 0;
  }

  function duration(ms) {
    const s = Math.ceil(ms / 1000);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + pad(Math.floor(s / 60) % 60) + 'm';
  }

  function tickLocks() {
    const now = serverNow();
    for (const c of state.lockCells) {
      if (!Number.isFinite(c.exp)) { c.left.textContent = '?'; continue; }
      const ms = c.exp - now;
      c.left.textContent = ms > 0 ? duration(ms) : 'expired';
      c.tr.classList.toggle('gone', ms <= 0);
    }
  }

  // ---- webhooks -----------------------------------------------------------

  async function pollHooks() {
    let r = null;
    try { r = await api('v1/webhooks'); } catch (_) { /* unreachable: keep the last view */ }
    if (r) {
      if (r.status === 404 || r.status === 405) {
        renderHooks([], 'Webhooks are not served by this hub.');
      } else if (r.ok && r.body) {
        const list = Array.isArray(r.body) ? r.body : (Array.isArray(r.body.webhooks) ? r.body.webhooks : []);
        const hooks = list.filter((h) => h && typeof h === 'object').slice(0, MAX_HOOKS);
        const summaries = await Promise.all(hooks.map(summarizeHook));
        renderHooks(summaries, 'No webhooks registered.');
      }
    }
  }

  // summarizeHook reads, defensively:
  //   hook: id, url, workspace, status, reason, and either
  //   hook.stats (or hook.delivery_stats): delivered|succeeded, failed, attempts|total,
  //     success_rate (0..1 or a percentage), p95_ms|p95_latency_ms|latency_p95_ms|latency.p95_ms,
  //     last_errors|last_failures: [string | {error|message|reason, time|at|failed_at,
  //     response_code|status_code, path}]
  //   or else v1/webhooks/{id}/deliveries, newest first: attempts with status
  //     (succeeded | pending | failed), latency_ms, response_code, error, time, path.
  async function summarizeHook(h) {
    const out = {
      url: str(h.url), status: str(h.status), workspace: str(h.workspace), reason: str(h.reason),
      rate: null, count: null, p95: null, failures: [],
    };
    const st = (h.stats && typeof h.stats === 'object') ? h.stats
      : ((h.delivery_stats && typeof h.delivery_stats === 'object') ? h.delivery_stats : null);
    if (st) {
      const ok = num(st.delivered) ?? num(st.succeeded) ?? num(st.successes);
      const bad = num(st.failed) ?? num(st.failures);
      const total = num(st.attempts) ?? num(st.total) ?? (ok !== null && bad !== null ? ok + bad : null);
      let rate = num(st.success_rate);
      if (rate !== null && rate <= 1) rate *= 100;
      if (rate === null && ok !== null && total) rate = 100 * ok / total;
      out.rate = rate;
      out.count = total;
      out.p95 = num(st.p95_ms) ?? num(st.p95_latency_ms) ?? num(st.latency_p95_ms) ??
        (st.latency && typeof st.latency === 'object' ? num(st.latency.p95_ms) : null);
      const errs = st.last_errors || st.last_failures || h.last_errors || h.last_failures;
      if (Array.isArray(errs)) out.failures = errs.slice(0, 3).map(failure);
      return out;
    }
    if (!h.id) return out;
    let r;
    try { r = await api('v1/webhooks/' + encodeURIComponent(str(h.id)) + '/deliveries?limit=100'); } catch (_) { return out; }
    if (!r.ok || !r.body) return out;
    const list = Array.isArray(r.body) ? r.body
      : (Array.isArray(r.body.deliveries) ? r.body.deliveries : (Array.isArray(r.body.items) ? r.body.items : []));
    const attempts = list.filter((d) => d && typeof d === 'object');
    if (!attempts.length) return out;
    const ok = attempts.filter((d) => d.status === 'succeeded').length;
    out.count = attempts.length;
    out.rate = 100 * ok / attempts.length;
    const lat = attempts.map((d) => num(d.latency_ms)).filter((v) => v !== null).sort((a, b) => a - b);
    if (lat.length) out.p95 = lat[Math.min(lat.length - 1, Math.ceil(0.95 * lat.length) - 1)];
    out.failures = attempts.filter((d) => d.status && d.status !== 'succeeded').slice(0, 3).map(failure);
    return out;
  }

  function failure(f) {
    if (typeof f === 'string') return { text: f };
    if (!f || typeof f !== 'object') return { text: str(f) };
    const t = Date.parse(str(f.time || f.at || f.failed_at));
    const code = num(f.response_code) ?? num(f.status_code);
    const parts = [];
    if (Number.isFinite(t)) parts.push(clock(t));
    if (code !== null) parts.push('HTTP ' + code);
    if (f.path) parts.push(str(f.path));
    const msg = str(f.error || f.message || f.reason);
    if (msg) parts.push(msg);
    return { text: parts.join(' · ') || 'failed' };
  }

  function renderHooks(hooks, emptyText) {
    const box = $('hooks');
    box.replaceChildren();
    for (const h of hooks) {
      const d = el('div', 'hook');
      d.append(el('div', 'url', h.url));
      const meta = el('div', 'meta');
      meta.append(el('span', 'st-' + h.status.replace(/[^a-z]/g, ''), h.status || '?'));
      if (h.workspace) meta.append(el('span', 'muted', h.workspace));
      const rate = el('span', null, 'success ');
      rate.append(el('b', null, h.rate === null ? '–' : h.rate.toFixed(h.rate === 100 ? 0 : 1) + '%'));
      if (h.count !== null) rate.append(el('span', 'muted', ' of ' + h.count));
      const p95 = el('span', null, 'p95 ');
      p95.append(el('b', null, h.p95 === null ? '–' : Math.round(h.p95) + ' ms'));
      meta.append(rate, p95);
      d.append(meta);
      if (h.reason) d.append(el('div', 'reason', h.reason));
      if (h.failures.length) {
        const ul = el('ul');
        for (const f of h.failures) ul.append(el('li', null, f.text));
        d.append(ul);
      }
      box.append(d);
    }
    $('hook-count').textContent = hooks.length ? '(' + hooks.length + ')' : '';
    const empty = $('hooks-empty');
    empty.textContent = emptyText;
    empty.hidden = hooks.length > 0;
  }

  // ---- start --------------------------------------------------------------

  function start() {
    buildTypeBoxes();
    let debounce = null;
    let applied = JSON.stringify(filters());
    const restart = () => {
      clearTimeout(debounce);
      const now = JSON.stringify(filters());
      if (now === applied) return;
      applied = now;
      setFilterError('');
      syncStreams(true);
    };
    $('filters').addEventListener('submit', (e) => { e.preventDefault(); restart(); });
    $('f-ws').addEventListener('change', restart);
    $('f-types').addEventListener('change', restart);
    $('f-path').addEventListener('change', restart);
    $('f-path').addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(restart, 600); });
    $('clear').addEventListener('click', clearRows);
    renderCount();
    $('locks').hidden = true;
    setInterval(() => { updateStatus(); tickLocks(); }, 500);
    loadWorkspaces();
    refreshStats();
    refreshLocks();
    poller(pollHooks, HOOK_POLL_MS)();
  }

  start();
})();
