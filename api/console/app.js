// hookq console: plain JavaScript, no build step, nothing loaded from elsewhere.
// Served by `hookq api` with a strict Content-Security-Policy (no inline script or
// style, Trusted Types): every value from the API is put into the page with
// textContent / createTextNode, never parsed as HTML.
'use strict';

(function () {
  const KEY_STORE = 'hookq.apiKey';
  const main = document.getElementById('main');
  const notice = document.getElementById('notice');

  // ---- DOM helpers ---------------------------------------------------------------
  // h('tr', {class: 'x', onclick: fn}, 'text', node, [more]): strings become text nodes.
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else if (k === 'hidden') el.hidden = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, kids);
    return el;
  }
  function append(el, kids) {
    for (const k of kids) {
      if (k === undefined || k === null || k === false) continue;
      if (Array.isArray(k)) append(el, k);
      else if (k instanceof Node) el.appendChild(k);
      else el.appendChild(document.createTextNode(String(k)));
    }
  }
  // Goes to hash; the same hash again renders the page again (a refresh).
  function nav(hash) {
    if (location.hash === hash) { say(''); route(); }
    else location.hash = hash;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
  function page(title, ...kids) {
    clear(main);
    append(main, [h('h1', {}, title), kids]);
  }
  function say(msg, info) {
    notice.textContent = msg;
    notice.className = info ? 'notice info' : 'notice';
    notice.hidden = !msg;
  }
  function fmtTime(ms) {
    const n = Number(ms);
    if (!n) return '';
    return new Date(n).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }
  // A dead letter's stream id ("<ms>-<seq>", "p3:<ms>-<seq>") gives when it was added.
  function idMs(id) {
    const m = /^(?:p\d+:)?(\d+)-\d+$/.exec(id || '');
    return m ? Number(m[1]) : 0;
  }
  function fmtAge(ms) {
    const n = Number(ms);
    if (!n) return '';
    const s = Math.max(0, Math.round((Date.now() - n) / 1000));
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  function pretty(text) {
    if (typeof text !== 'string') return JSON.stringify(text, null, 2);
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }
  // "1 dead letter", "3 dead letters", "50+ dead letters" (more pages).
  function letters(n, more) {
    return n + (more ? '+' : '') + ' dead letter' + (n === 1 && !more ? '' : 's');
  }
  function stateBadge(ep) {
    return ep.enabled === false ? h('span', {class: 'badge off'}, 'disabled')
                                : h('span', {class: 'badge ok'}, 'enabled');
  }
  // A copy button: the clipboard API (secure contexts: https or loopback), else
  // select the text so the user can copy it by hand.
  function copyButton(id, target) {
    return h('button', {type: 'button', id: id, class: 'copy', onclick: async (ev) => {
      const b = ev.currentTarget;
      try {
        await navigator.clipboard.writeText(target.textContent);
        b.textContent = 'Copied';
      } catch (e) {
        const r = document.createRange();
        r.selectNodeContents(target);
        const s = window.getSelection();
        s.removeAllRanges();
        s.addRange(r);
        b.textContent = 'Selected: press Ctrl+C';
      }
    }}, 'Copy');
  }

  // ---- API -----------------------------------------------------------------------
  function apiKey() { return sessionStorage.getItem(KEY_STORE) || ''; }
  async function api(method, path, body) {
    const headers = {'Accept': 'application/json'};
    const key = apiKey();
    if (key) headers['Authorization'] = 'Bearer ' + key;
    const init = {method, headers, cache: 'no-store', credentials: 'omit'};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (e) { data = text; } }
    if (!res.ok) {
      let msg = res.status + ' ' + res.statusText;
      if (data && typeof data === 'object') msg = (data.detail || data.title || msg);
      if (res.status === 401) msg = 'the API key is missing or not valid (' + msg + ')';
      const err = new Error(msg);
      err.status = res.status;
      throw err;
    }
    return data;
  }
  // A list answer: {data: [...], iterator, done} (or a bare array).
  function items(r) { return Array.isArray(r) ? r : (r && Array.isArray(r.data) ? r.data : []); }
  function qs(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
    const s = u.toString();
    return s ? '?' + s : '';
  }
  // Runs an async page body, showing its error in the notice bar.
  // An API error (it has a status) is the user's news; anything else is a bug
  // in this page and goes to the console as well (the browser tests fail on it).
  async function guard(fn) {
    try {
      await fn();
    } catch (e) {
      say(e.message || String(e));
      if (e.status === undefined) console.error('hookq console:', e);
    }
  }

  // ---- Webhooks --------------------------------------------------------------------
  async function webhooksPage() {
    const table = h('table', {id: 'webhook-list'},
      h('thead', {}, h('tr', {}, h('th', {}, 'State'), h('th', {}, 'Name'), h('th', {}, 'URL'),
                     h('th', {}, 'Events'), h('th', {}, 'Created'))));
    const tbody = h('tbody', {});
    table.appendChild(tbody);
    const more = h('button', {type: 'button', id: 'webhook-more', hidden: true}, 'More');
    page('Webhooks',
      h('div', {class: 'row'}, h('button', {type: 'button', class: 'primary', id: 'new-webhook',
        onclick: () => { location.hash = '#/webhooks/new'; }}, 'New webhook')),
      table, h('div', {class: 'row'}, more));
    let iterator = '';
    async function load() {
      const r = await api('GET', '/v1/endpoints' + qs({limit: 50, iterator}));
      for (const ep of items(r)) {
        tbody.appendChild(h('tr', {class: 'clickable', 'data-id': ep.id,
                                   onclick: () => { location.hash = '#/webhooks/' + encodeURIComponent(ep.id); }},
          h('td', {}, stateBadge(ep)), h('td', {class: 'ep-name'}, ep.name),
          h('td', {class: 'wrap'}, ep.url), h('td', {}, (ep.events || []).join(', ')),
          h('td', {}, fmtTime(ep.created_ms))));
      }
      iterator = r && r.iterator ? r.iterator : '';
      more.hidden = !iterator || !!(r && r.done);
      if (!tbody.firstChild) tbody.appendChild(h('tr', {}, h('td', {colspan: 5, class: 'muted'}, 'No webhooks yet.')));
    }
    more.addEventListener('click', () => guard(load));
    await load();
  }

  async function newWebhookPage() {
    const checks = h('div', {class: 'checks', id: 'wh-events'});
    const name = h('input', {type: 'text', id: 'wh-name', required: true, maxlength: 256});
    const url = h('input', {type: 'url', id: 'wh-url', required: true, placeholder: 'https://example.com/webhooks'});
    const desc = h('textarea', {id: 'wh-description'});
    const patterns = h('input', {type: 'text', id: 'wh-patterns', placeholder: 'invoice.*, user.*'});
    const submit = h('button', {type: 'submit', class: 'primary', id: 'wh-create'}, 'Create');
    const form = h('form', {class: 'card', id: 'wh-form'},
      h('div', {class: 'field'}, h('label', {for: 'wh-name'}, 'Name'), name),
      h('div', {class: 'field'}, h('label', {for: 'wh-url'}, 'URL'), url),
      h('div', {class: 'field'}, h('label', {for: 'wh-description'}, 'Description'), desc),
      h('div', {class: 'field'}, h('label', {}, 'Events'), checks,
        h('span', {class: 'muted'}, 'None checked and no pattern: every event type.')),
      h('div', {class: 'field'}, h('label', {for: 'wh-patterns'}, 'Patterns (prefix.*), comma-separated'), patterns),
      h('div', {class: 'row'}, submit));
    page('New webhook', form);
    guard(async () => {
      const r = await api('GET', '/v1/event-types');
      for (const t of items(r)) {
        const n = typeof t === 'string' ? t : (t.name || t.type || '');
        if (!n) continue;
        checks.appendChild(h('label', {}, h('input', {type: 'checkbox', value: n}), n));
      }
      if (!checks.firstChild) checks.appendChild(h('span', {class: 'muted'}, 'No event types seen yet.'));
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      guard(async () => {
        const events = [...checks.querySelectorAll('input:checked')].map((c) => c.value);
        for (const p of patterns.value.split(',')) if (p.trim()) events.push(p.trim());
        const body = {name: name.value, url: url.value, description: desc.value};
        if (events.length) body.events = events;
        submit.disabled = true;
        let ep;
        try { ep = await api('POST', '/v1/endpoints', body); } finally { submit.disabled = false; }
        say('');
        showCreated(ep);
      });
    });
  }

  // The one time both keys are shown in full.
  function showCreated(ep) {
    const k1 = h('code', {id: 'key1'}, ep.key1 || '');
    const k2 = h('code', {id: 'key2'}, ep.key2 || '');
    page('Webhook created',
      h('div', {class: 'card secret-panel', id: 'secrets'},
        h('p', {}, 'Webhook ', h('strong', {id: 'created-name'}, ep.name), ' (', h('code', {id: 'created-id'}, ep.id), ') was created.'),
        h('p', {class: 'warn-text'}, 'Store both signing keys now: they are shown in full only this once. ' +
          'Every request is signed with both, so the receiver may verify with either.'),
        h('div', {class: 'secret'}, h('span', {}, 'Key 1'), k1, copyButton('copy-key1', k1)),
        h('div', {class: 'secret'}, h('span', {}, 'Key 2'), k2, copyButton('copy-key2', k2))),
      h('div', {class: 'row'},
        h('a', {href: '#/webhooks/' + encodeURIComponent(ep.id), id: 'created-open'}, 'Open the webhook'),
        h('a', {href: '#/webhooks'}, 'All webhooks')));
  }

  async function webhookPage(id) {
    const ep = await api('GET', '/v1/endpoints/' + encodeURIComponent(id));
    const keyOut = h('div', {id: 'rotated', hidden: true, class: 'card secret-panel'});
    const toggle = h('button', {type: 'button', id: 'toggle-enabled'}, ep.enabled === false ? 'Enable' : 'Disable');
    const confirmBox = h('div', {class: 'confirm', id: 'delete-box', hidden: true});
    const attempts = h('div', {id: 'wh-attempts'}, h('span', {class: 'muted'}, 'Loading...'));
    const dead = h('div', {id: 'wh-dead'}, h('span', {class: 'muted'}, 'Loading...'));
    page('Webhook ' + (ep.name || ep.id),
      h('div', {class: 'card'},
        h('dl', {class: 'kv', id: 'wh-detail'},
          h('dt', {}, 'Id'), h('dd', {class: 'mono'}, ep.id),
          h('dt', {}, 'Name'), h('dd', {id: 'wh-detail-name'}, ep.name),
          h('dt', {}, 'State'), h('dd', {id: 'wh-state'}, stateBadge(ep), ep.disabled_why ? ' ' + ep.disabled_why : ''),
          h('dt', {}, 'URL'), h('dd', {}, ep.url),
          h('dt', {}, 'Description'), h('dd', {}, ep.description || ''),
          h('dt', {}, 'Events'), h('dd', {}, (ep.events || []).join(', ')),
          h('dt', {}, 'Key 1'), h('dd', {class: 'mono'}, ep.key1 || '', ep.key1_ms ? '  (' + fmtTime(ep.key1_ms) + ')' : ''),
          h('dt', {}, 'Key 2'), h('dd', {class: 'mono'}, ep.key2 || '', ep.key2_ms ? '  (' + fmtTime(ep.key2_ms) + ')' : ''),
          h('dt', {}, 'Created'), h('dd', {}, fmtTime(ep.created_ms)))),
      h('div', {class: 'row'},
        h('button', {type: 'button', id: 'rotate-1', onclick: () => rotate(1)}, 'Rotate key 1'),
        h('button', {type: 'button', id: 'rotate-2', onclick: () => rotate(2)}, 'Rotate key 2'),
        toggle,
        h('button', {type: 'button', class: 'danger', id: 'delete', onclick: () => { confirmBox.hidden = false; }}, 'Delete')),
      confirmBox, keyOut,
      h('h2', {}, 'Recent attempts'), attempts,
      h('h2', {}, 'Recent failures (dead letters)'), dead);

    function rotate(slot) {
      guard(async () => {
        const r = await api('POST', '/v1/endpoints/' + encodeURIComponent(id) + '/rotate', {slot});
        const key = r && (r['key' + slot] || r.key || r.secret);
        const code = h('code', {id: 'rotated-key'}, key || '');
        clear(keyOut);
        append(keyOut, [h('p', {class: 'warn-text'}, 'Key ' + slot + ' was replaced. Store the new key now: it is shown only this once.'),
                        h('div', {class: 'secret'}, code, copyButton('copy-rotated', code))]);
        keyOut.hidden = !key;
        say(key ? '' : 'key ' + slot + ' rotated', true);
      });
    }
    toggle.addEventListener('click', () => guard(async () => {
      const verb = ep.enabled === false ? 'enable' : 'disable';
      await api('POST', '/v1/endpoints/' + encodeURIComponent(id) + '/' + verb);
      await webhookPage(id);
      say('webhook ' + verb + 'd', true);
    }));
    const typed = h('input', {type: 'text', id: 'delete-confirm', placeholder: ep.id});
    const yes = h('button', {type: 'button', class: 'danger', id: 'delete-yes', disabled: true}, 'Delete for good');
    typed.addEventListener('input', () => { yes.disabled = typed.value !== ep.id; });
    yes.addEventListener('click', () => guard(async () => {
      await api('DELETE', '/v1/endpoints/' + encodeURIComponent(id));
      location.hash = '#/webhooks';
      say('webhook ' + ep.id + ' deleted', true);
    }));
    append(confirmBox, [h('p', {}, 'Type the webhook id (', h('code', {}, ep.id), ') to delete it. Its dead letters stay.'),
                        h('div', {class: 'row'}, typed, yes,
                          h('button', {type: 'button', onclick: () => { confirmBox.hidden = true; }}, 'Cancel'))]);
    // The endpoint's newest attempts (a bounded scan of the attempt records:
    // "complete" false when the scan stopped early) and its recent dead
    // letters, each event linking to its attempt timeline.
    const eventLink = (eid) =>
      h('a', {href: '#/events?' + new URLSearchParams({id: eid || ''}).toString(), class: 'mono'}, eid);
    fill(attempts, async () => {
      const r = await api('GET', '/v1/endpoints/' + encodeURIComponent(id) + '/attempts' + qs({limit: 20}));
      const recs = items(r);
      const partial = r && r.complete === false ? h('p', {class: 'muted', id: 'wh-attempts-partial'},
        'Only part of the attempt records was read (the scan has a budget): older attempts may be missing.') : null;
      if (!recs.length) return [h('span', {class: 'muted'}, 'No attempts recorded for this webhook (records expire after HOOKQ_ATTEMPT_TTL).'), partial];
      return [h('table', {id: 'wh-attempts-table'},
        h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Event'), h('th', {}, 'Attempt'),
          h('th', {}, 'Outcome'), h('th', {}, 'Status / error'), h('th', {}, 'Duration'))),
        h('tbody', {}, recs.map((a) => h('tr', {class: a.outcome === 'delivered' ? 'ok' : 'bad'},
          h('td', {}, fmtTime(a.at_ms)), h('td', {}, eventLink(a.event_id)), h('td', {}, a.attempt ?? ''),
          h('td', {}, a.outcome || ''), h('td', {class: 'wrap'}, (a.status ? a.status : '') + (a.error ? (a.status ? ' ' : '') + a.error : '')),
          h('td', {}, a.duration_ms !== undefined ? a.duration_ms + ' ms' : ''))))), partial];
    });
    fill(dead, async () => {
      const recs = items(await api('GET', '/v1/dead-letters' + qs({endpoint: id, limit: 20})));
      if (!recs.length) return h('span', {class: 'muted'}, 'No dead letters for this webhook.');
      return h('table', {},
        h('thead', {}, h('tr', {}, h('th', {}, 'Last attempt'), h('th', {}, 'Reason'), h('th', {}, 'Type'),
          h('th', {}, 'Event'), h('th', {}, 'Attempts'), h('th', {}, 'Last status'), h('th', {}, 'Last error'))),
        h('tbody', {}, recs.map((d) => h('tr', {},
          h('td', {}, fmtTime(d.last_attempt_ms)), h('td', {}, d.reason), h('td', {}, d.type),
          h('td', {}, eventLink(d.event_id)),
          h('td', {}, d.attempts), h('td', {}, d.last_status), h('td', {class: 'wrap'}, d.last_error)))));
    });
  }
  // Fills el with what load() resolves to (nodes or text), or the error it throws.
  function fill(el, load) {
    (async () => {
      let kids;
      try {
        kids = await load();
      } catch (e) {
        clear(el);
        el.appendChild(h('span', {class: 'muted'}, 'Could not load: ' + e.message));
        return;
      }
      clear(el);
      append(el, [kids]);
    })();
  }

  // ---- Dead letters -----------------------------------------------------------------
  const DL_FILTERS = ['endpoint', 'type', 'reason', 'since', 'until'];
  const DL_PAGE = 50;
  async function deadLettersPage(params) {
    const inputs = {};
    for (const f of DL_FILTERS) inputs[f] = h('input', {type: 'text', id: 'dl-' + f, value: params.get(f) || '',
      placeholder: f === 'since' || f === 'until' ? '2h or 2026-12-01' : '',
      title: f === 'since' || f === 'until' ? 'a duration (2h ago), unix ms, or 2026-12-01[T12:00:00Z]' : (f === 'reason' ? 'a prefix of the reason' : '')});
    const form = h('form', {class: 'card', id: 'dl-filter'},
      h('div', {class: 'row'}, DL_FILTERS.map((f) => h('div', {class: 'field'}, h('label', {for: 'dl-' + f}, f), inputs[f]))),
      h('div', {class: 'row'}, h('button', {type: 'submit', class: 'primary', id: 'dl-apply'}, 'Filter')));
    const status = h('div', {id: 'dl-status', class: 'muted'});
    const tbody = h('tbody', {});
    const detail = h('div', {id: 'dl-detail', class: 'card', hidden: true});
    const confirmBox = h('div', {class: 'confirm', id: 'dl-purge-box', hidden: true});
    const filter = {};
    for (const f of DL_FILTERS) if (params.get(f)) filter[f] = params.get(f);
    const replayAll = h('button', {type: 'button', id: 'dl-replay-all'}, 'Replay all matching');
    const purge = h('button', {type: 'button', class: 'danger', id: 'dl-purge'}, 'Purge all matching');
    page('Dead letters', form,
      h('div', {class: 'row'}, replayAll, purge, status), confirmBox, detail,
      h('table', {id: 'dl-list'},
        h('thead', {}, h('tr', {}, h('th', {}, 'Age'), h('th', {}, 'Reason'), h('th', {}, 'Endpoint'),
          h('th', {}, 'Type'), h('th', {}, 'Event'), h('th', {}, 'Last status'), h('th', {}, 'Attempts'), h('th', {}, ''))),
        tbody));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const p = new URLSearchParams();
      for (const f of DL_FILTERS) if (inputs[f].value.trim()) p.set(f, inputs[f].value.trim());
      const s = p.toString();
      nav('#/dead-letters' + (s ? '?' + s : ''));
    });
    const list = [];
    let last = null; // the last page's answer
    const more = h('button', {type: 'button', id: 'dl-more', hidden: true}, 'More');
    main.appendChild(h('div', {class: 'row'}, more));
    // One page (DL_PAGE rows) at a time; More follows the iterator.
    async function load() {
      last = await api('GET', '/v1/dead-letters' + qs(Object.assign({limit: DL_PAGE, iterator: last && last.iterator}, filter)));
      for (const d of items(last)) {
        list.push(d);
        tbody.appendChild(h('tr', {class: 'dl-row', 'data-id': d.id},
          h('td', {}, fmtAge(Number(d.last_attempt_ms) || Number(d.first_attempt_ms) || idMs(d.id))), h('td', {class: 'dl-reason'}, d.reason),
          h('td', {class: 'mono'}, d.endpoint_id), h('td', {}, d.type), h('td', {class: 'mono'}, d.event_id),
          h('td', {}, String(d.last_status ?? '')), h('td', {}, String(d.attempts ?? '')),
          h('td', {},
            h('button', {type: 'button', class: 'dl-show', onclick: () => showLetter(d)}, 'Show'), ' ',
            h('button', {type: 'button', class: 'dl-replay', onclick: (ev) => replayOne(d, ev.currentTarget)}, 'Replay'))));
      }
      const unfinished = !!(last && last.done === false && last.iterator);
      more.hidden = !unfinished;
      status.textContent = letters(list.length, unfinished);
      if (!list.length) tbody.appendChild(h('tr', {}, h('td', {colspan: 8, class: 'muted'}, 'No dead letters match.')));
    }
    more.addEventListener('click', () => guard(load));
    await load();

    function showLetter(d) {
      guard(async () => {
        const full = d.payload !== undefined ? d : await api('GET', '/v1/dead-letters/' + encodeURIComponent(d.id));
        clear(detail);
        const fields = [];
        for (const [k, v] of Object.entries(full)) {
          if (k === 'payload') continue;
          const shown = typeof v === 'object' ? JSON.stringify(v) : String(v);
          fields.push(h('dt', {}, k), h('dd', {}, shown, k.endsWith('_ms') && Number(v) ? '  (' + fmtTime(v) + ')' : ''));
        }
        append(detail, [h('h2', {}, 'Dead letter ', h('code', {}, full.id)), h('dl', {class: 'kv'}, fields),
                        h('h2', {}, 'Payload'), h('pre', {id: 'dl-payload'}, pretty(full.payload ?? ''))]);
        detail.hidden = false;
      });
    }
    function replayOne(d, button) {
      guard(async () => {
        const r2 = await api('POST', '/v1/dead-letters/replay', {ids: [d.id]});
        const n = Number((r2 && r2.done_count) || 0);
        button.disabled = true;
        button.textContent = n ? 'Replayed' : 'Not replayed';
        say(n ? 'replayed dead letter ' + d.id : 'dead letter ' + d.id + ' was not replayed' +
            (r2 && r2.skipped ? ' (not replayable)' : r2 && r2.missing ? ' (no longer there)' : ''), !!n);
      });
    }
    // Bulk operations run in slices: the server answers {done:false, iterator}
    // until the whole filtered set is done.
    async function bulk(verb) {
      let total = 0, skipped = 0, iterator;
      for (;;) {
        const body = {filter: Object.assign({}, filter)};
        if (iterator) body.iterator = iterator;
        const r2 = await api('POST', '/v1/dead-letters/' + verb, body);
        total += Number((r2 && r2.done_count) || 0);
        skipped += Number((r2 && r2.skipped) || 0);
        status.textContent = verb + ': ' + total + ' done' + (skipped ? ', ' + skipped + ' skipped' : '');
        if (!r2 || r2.done !== false || !r2.iterator) break;
        iterator = r2.iterator;
      }
      return {total, skipped};
    }
    replayAll.addEventListener('click', () => guard(async () => {
      replayAll.disabled = true;
      try {
        const n = await bulk('replay');
        say('replayed ' + letters(n.total) + (n.skipped ? ' (' + n.skipped + ' skipped: not replayable)' : ''), true);
      } finally { replayAll.disabled = false; }
    }));
    purge.addEventListener('click', () => {
      clear(confirmBox);
      const yes = h('button', {type: 'button', class: 'danger', id: 'dl-purge-yes'},
        'Yes, purge ' + letters(list.length, !more.hidden));
      yes.addEventListener('click', () => guard(async () => {
        confirmBox.hidden = true;
        const n = await bulk('purge');
        await deadLettersPage(params);
        say('purged ' + letters(n.total), true);
      }));
      append(confirmBox, [h('p', {}, 'Purge every dead letter matching this filter? They are deleted for good and cannot be replayed.'),
                          h('div', {class: 'row'}, yes, h('button', {type: 'button', onclick: () => { confirmBox.hidden = true; }}, 'Cancel'))]);
      confirmBox.hidden = false;
    });
  }

  // ---- Event lookup ---------------------------------------------------------------------
  async function eventsPage(params) {
    const id = h('input', {type: 'search', id: 'ev-id', value: params.get('id') || '', placeholder: 'event id'});
    const out = h('div', {id: 'ev-timeline'});
    const form = h('form', {class: 'card row', id: 'ev-form'}, h('label', {for: 'ev-id'}, 'Event id'), id,
                   h('button', {type: 'submit', class: 'primary', id: 'ev-go'}, 'Look up'));
    page('Event lookup', form, out);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      nav('#/events?' + new URLSearchParams({id: id.value.trim()}).toString());
    });
    if (!params.get('id')) return;
    let r;
    try {
      r = await api('GET', '/v1/events/' + encodeURIComponent(params.get('id')) + '/attempts');
    } catch (e) {
      if (e.status !== 404) throw e;
      out.appendChild(h('p', {class: 'muted', id: 'ev-none'}, e.message));
      return;
    }
    // {endpoints: [{endpoint_id, attempts: [...]}]}, or flat records in data
    const byEp = new Map();
    if (r && Array.isArray(r.endpoints)) {
      for (const g of r.endpoints) byEp.set(g.endpoint_id || '', Array.isArray(g.attempts) ? g.attempts : []);
    } else {
      for (const a of items(r)) {
        const k = a.endpoint_id || '';
        if (!byEp.has(k)) byEp.set(k, []);
        byEp.get(k).push(a);
      }
    }
    if (!byEp.size) { out.appendChild(h('p', {class: 'muted', id: 'ev-none'}, 'No attempts recorded for this event (records expire after HOOKQ_ATTEMPT_TTL).')); return; }
    for (const [ep, list] of byEp) {
      out.appendChild(h('div', {class: 'card ev-endpoint', 'data-endpoint': ep},
        h('h2', {}, 'Endpoint ', h('a', {href: '#/webhooks/' + encodeURIComponent(ep), class: 'mono'}, ep)),
        h('ul', {class: 'timeline'}, list.map((a) => h('li', {class: a.outcome === 'delivered' || (a.status >= 200 && a.status < 300) ? 'ok' : 'bad'},
          fmtTime(a.at_ms) + '  attempt ' + (a.attempt ?? '?') + '  ' + (a.outcome || '') + '  status ' + (a.status ?? '') +
          (a.duration_ms !== undefined ? '  ' + a.duration_ms + ' ms' : '') + (a.error ? '  ' + a.error : ''),
          a.response ? h('pre', {}, a.response) : null)))));
    }
  }

  // ---- Overview ---------------------------------------------------------------------------
  let overviewTimer = 0;
  async function overviewPage() {
    const box = h('div', {id: 'stats'}, h('span', {class: 'muted'}, 'Loading...'));
    page('Overview', box, h('p', {class: 'muted'}, 'Refreshed every 5 s while this tab is visible.'));
    async function load() {
      const s = await api('GET', '/v1/stats');
      clear(box);
      box.appendChild(renderStats(s));
    }
    await load();
    overviewTimer = setInterval(() => { if (!document.hidden) guard(load); }, 5000);
  }
  // What `hookq stats --json` prints: the counters as tiles, dead letters by
  // reason as a table, the rest as a key/value list.
  const TILES = [['stream_length', 'Stream length'], ['lag', 'Lag'], ['pending', 'Pending'],
                 ['retry_backlog', 'Retry backlog'], ['retry_lane_length', 'Retry lane'],
                 ['dead_letters', 'Dead letters'], ['consumers', 'Consumers'], ['endpoints', 'Webhooks'],
                 ['deliveries_per_s', 'Deliveries/s']];
  function renderStats(s) {
    s = s && typeof s === 'object' ? s : {};
    const tiles = h('div', {class: 'stats'});
    for (const [k, label] of TILES) {
      let v = s[k];
      let note = '';
      if (k === 'deliveries_per_s') {
        if (v === undefined) { v = null; note = ' (not configured: hookq api --worker-metrics)'; }
        else if (!s.workers_reachable) note = ' (no worker metrics reachable)';
        else if (v === null) note = ' (measuring)';
        else note = ' (' + s.workers_reachable + ' of ' + s.workers_configured + ' workers)';
      }
      if (v === undefined) continue;
      tiles.appendChild(h('div', {class: 'stat', 'data-stat': k},
        h('div', {class: 'v'}, v === null ? '-' : String(v)), h('div', {class: 'k'}, label + note)));
    }
    const reasons = s.dead_by_reason && typeof s.dead_by_reason === 'object' ? Object.entries(s.dead_by_reason) : [];
    const rest = {};
    for (const [k, v] of Object.entries(s))
      if (!TILES.some((t) => t[0] === k) && k !== 'dead_by_reason') rest[k] = v;
    return h('div', {},
      tiles,
      h('h2', {}, 'Dead letters by reason'),
      reasons.length ? h('table', {id: 'dead-by-reason'},
        h('thead', {}, h('tr', {}, h('th', {}, 'Reason'), h('th', {}, 'Count'))),
        h('tbody', {}, reasons.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, String(v))))))
        : h('p', {class: 'muted'}, 'None.'),
      h('h2', {}, 'Details'), kv(rest));
  }
  function kv(v) {
    if (v === null || typeof v !== 'object') return h('span', {}, String(v));
    if (Array.isArray(v)) {
      if (v.every((x) => x === null || typeof x !== 'object')) return h('span', {}, v.join(', '));
      return h('div', {}, v.map((x) => h('div', {class: 'card'}, kv(x))));
    }
    return h('dl', {class: 'kv'}, Object.entries(v).map(([k, x]) => [h('dt', {}, k), h('dd', {}, kv(x))]));
  }

  // ---- Routing ----------------------------------------------------------------------------
  async function route() {
    clearInterval(overviewTimer);
    const hash = location.hash || '#/webhooks';
    delete main.dataset.shown;
    const [path, query] = hash.slice(1).split('?');
    const params = new URLSearchParams(query || '');
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    for (const a of document.querySelectorAll('#nav a'))
      a.classList.toggle('active', a.dataset.page === (parts[0] || 'webhooks'));
    if (!apiKey()) {
      page('API key needed', h('p', {}, 'Type an API key into the field above. It is kept in this tab only (sessionStorage).'));
      return;
    }
    await guard(async () => {
      if (parts[0] === 'dead-letters') await deadLettersPage(params);
      else if (parts[0] === 'events') await eventsPage(params);
      else if (parts[0] === 'overview') await overviewPage();
      else if (parts[1] === 'new') await newWebhookPage();
      else if (parts[1]) await webhookPage(parts[1]);
      else await webhooksPage();
    });
    // The page for the current hash has loaded (what tests wait for before
    // they act, so they never click a page being replaced).
    if ((location.hash || '#/webhooks') === hash) main.dataset.shown = hash;
  }

  // ---- The key form ---------------------------------------------------------------------
  const keyInput = document.getElementById('api-key');
  const keyState = document.getElementById('key-state');
  function showKeyState() { keyState.textContent = apiKey() ? 'key set (this tab)' : 'no key'; }
  document.getElementById('key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const k = keyInput.value.trim();
    if (k) sessionStorage.setItem(KEY_STORE, k);
    keyInput.value = '';
    showKeyState();
    say('');
    route();
  });
  document.getElementById('key-forget').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORE);
    showKeyState();
    route();
  });
  window.addEventListener('hashchange', () => { say(''); route(); });
  showKeyState();
  route();
})();
