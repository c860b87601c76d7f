'use strict';
// Shared by the dashboard's pages. Everything that comes from the server reaches the page as text (textContent,
// text nodes, setAttribute of plain values), never as HTML: run names and record ids are whatever people typed.
const Dash = (() => {
  const refreshMs = 3000;

  /** An element with properties ('class', 'text', attributes) and children (nodes or strings, added as text). */
  function el(tag, props, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined) continue;
      if (key === 'class') element.className = value;
      else if (key === 'text') element.textContent = value;
      else element.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) element.append(child);
    }
    return element;
  }

  /** An SVG element with attributes. */
  function svg(tag, attributes) {
    const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [key, value] of Object.entries(attributes || {})) element.setAttribute(key, String(value));
    return element;
  }

  /** GET a JSON API path; a 401 sends the person to the login form, other errors throw with the server's message. */
  async function getJson(path) {
    const response = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
    if (response.status === 401) {
      window.location.assign('/login?return=' + encodeURIComponent(window.location.pathname + window.location.search));
      throw new Error('signing in');
    }
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = await response.json();
        if (body && body.error) message = body.error;
      } catch (_) { /* not JSON */ }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  /** Replaces a table body's rows. */
  function fillTable(table, rows, emptyText, columns) {
    const body = table.tBodies[0];
    if (rows.length === 0) {
      body.replaceChildren(el('tr', { class: 'none' }, el('td', { colspan: String(columns), text: emptyText })));
    } else {
      body.replaceChildren(...rows);
    }
  }

  const number = new Intl.NumberFormat('en-US');

  function count(n) {
    return n === null || n === undefined ? '—' : number.format(n);
  }

  /** "100%" when done, one decimal otherwise. */
  function percent(p) {
    const value = Number(p || 0);
    return `${value >= 100 ? '100' : value.toFixed(1)}%`;
  }

  function rate(perSecond) {
    if (perSecond === null || perSecond === undefined) return '—';
    const value = Number(perSecond);
    return `${value >= 100 ? number.format(Math.round(value)) : value.toFixed(1)} rec/s`;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    let s = Math.max(0, Math.round(Number(seconds)));
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    if (h > 0) return `${h} h ${m} min`;
    if (m > 0) return `${m} min ${s} s`;
    return `${s} s`;
  }

  const finalStates = new Set(['completed', 'completed_with_failures', 'failed', 'cancelled']);

  /** ETA text: "—" while unknown, "done" for a finished run. */
  function eta(run) {
    if (finalStates.has(run.state)) return 'done';
    return duration(run.eta_seconds);
  }

  function time(iso) {
    return iso ? new Date(iso).toLocaleTimeString('en-GB') : '—';
  }

  function dateTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return `${d.toLocaleDateString('en-CA')} ${d.toLocaleTimeString('en-GB')}`;
  }

  function badge(state) {
    return el('span', { class: `badge state-${String(state).replace(/[^a-z]/g, '')}`, text: state });
  }

  /** A progress bar for a run (role=progressbar), its width the percent done. */
  function progressBar(run) {
    const value = Math.min(100, Math.max(0, Number(run.percent_done || 0)));
    const fill = el('div', { class: `fill state-${String(run.state).replace(/[^a-z]/g, '')}` });
    fill.style.width = `${value}%`;
    return el('div', { class: 'progress' },
      el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(value) }, fill),
      el('span', { class: 'percent', text: percent(run.percent_done) }));
  }

  /** Calls refresh now and every few seconds; shows when it last worked, or why it did not. */
  function poll(refresh) {
    const updated = document.getElementById('updated');
    const error = document.getElementById('error');
    async function tick() {
      try {
        await refresh();
        error.hidden = true;
        updated.textContent = `Updated ${new Date().toLocaleTimeString('en-GB')} · refreshes every ${refreshMs / 1000} s`;
      } catch (e) {
        error.textContent = `Could not refresh: ${e.message}`;
        error.hidden = false;
      }
      window.setTimeout(tick, refreshMs);
    }
    tick();
  }

  /** Calls load once (a page that does not change by itself); shows when it was read, or why it could not be. */
  async function once(load) {
    const updated = document.getElementById('updated');
    const error = document.getElementById('error');
    try {
      await load();
      error.hidden = true;
      updated.textContent = `Read ${new Date().toLocaleTimeString('en-GB')}`;
    } catch (e) {
      error.textContent = `Could not load: ${e.message}`;
      error.hidden = false;
      updated.textContent = '';
    }
  }

  /** A number with a fixed count of decimals, or "—" when there is none (an undefined metric). */
  function fixed(value, digits) {
    return value === null || value === undefined ? '—' : Number(value).toFixed(digits);
  }

  return { el, svg, getJson, fillTable, count, percent, rate, duration, eta, time, dateTime, badge, progressBar, poll, once, fixed };
})();
