'use strict';
// One run: progress and counts, a throughput chart (SVG, stacked bars per minute and worker), workers, shard states,
// quarantine reasons and label prevalence, all refreshed every few seconds from the JSON API.
(() => {
  const { el, svg } = Dash;
  const runId = decodeURIComponent(window.location.pathname.split('/').filter(Boolean).pop() || '');
  const api = `/api/runs/${encodeURIComponent(runId)}`;
  const palette = ['#2f6fdf', '#e0822b', '#2a9d6f', '#c2417b', '#7a5cc7', '#8c8c2a', '#1f9bb0', '#b5543a'];

  function renderRun(run) {
    document.title = `${run.name} · HubertEcg`;
    document.getElementById('run-name').textContent = run.name;
    document.getElementById('run-state').replaceWith(Object.assign(Dash.badge(run.state), { id: 'run-state' }));
    document.getElementById('run-id').textContent = run.run_id;
    document.getElementById('run-model').textContent = `model ${run.model_id}`;
    document.getElementById('run-progress').replaceChildren(Dash.progressBar(run));
    const stats = [
      ['Planned', `${Dash.count(run.records_planned)}${run.planning_complete ? '' : ' (planning)'}`],
      ['Scored', Dash.count(run.records_done)],
      ['Quarantined', Dash.count(run.records_quarantined)],
      ['Failed', Dash.count(run.records_failed)],
      ['Left out (scores current)', Dash.count(run.records_skipped)],
      ['Remaining', Dash.count(run.records_remaining)],
      ['Rate (last minute)', Dash.rate(run.rate_last_minute)],
      ['Rate (last hour)', Dash.rate(run.rate_last_hour)],
      ['ETA', Dash.eta(run)],
      ['Started', Dash.dateTime(run.started_at)],
      ['Finished', Dash.dateTime(run.finished_at)],
    ];
    document.getElementById('run-stats').replaceChildren(...stats.map(([k, v]) => el('div', null, el('dt', { text: k }), el('dd', { text: v }))));
  }

  /** The smallest 1, 2 or 5 times a power of ten at or above the value: the chart's top. */
  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    return [1, 2, 5, 10].map(m => m * power).find(v => v >= value);
  }

  function tick(value) {
    if (value === 0) return '0';
    return value >= 10 ? String(Math.round(value)) : String(Number(value.toPrecision(2)));
  }

  function renderChart(rows) {
    const chart = document.getElementById('chart');
    const legend = document.getElementById('legend');
    if (rows.length === 0) {
      chart.replaceChildren(el('p', { class: 'none', text: 'Nothing written yet.' }));
      legend.replaceChildren();
      return;
    }
    const workers = [...new Set(rows.map(r => r.worker))].sort();
    const color = w => palette[workers.indexOf(w) % palette.length];
    const byMinute = new Map();
    for (const r of rows) {
      const t = Date.parse(r.minute);
      if (!byMinute.has(t)) byMinute.set(t, []);
      byMinute.get(t).push(r);
    }
    const first = Math.min(...byMinute.keys());
    const last = Math.max(...byMinute.keys());
    const minutes = [];
    for (let t = first; t <= last; t += 60000) minutes.push(t);
    const totals = minutes.map(t => (byMinute.get(t) || []).reduce((s, r) => s + Number(r.records_per_second), 0));
    const max = niceCeiling(Math.max(...totals));

    // Drawn at the chart's own width, so text is at its real size.
    const width = Math.max(360, Math.round(chart.clientWidth || 720)), height = 220, left = 52, right = 12, top = 12, bottom = 28;
    const plotW = width - left - right, plotH = height - top - bottom;
    const slot = plotW / minutes.length;
    const barW = Math.max(2, Math.min(48, slot * 0.8));
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'records per second by minute and worker' });
    for (const f of [0, 0.5, 1]) {
      const y = top + plotH * (1 - f);
      root.append(svg('line', { x1: left, x2: width - right, y1: y, y2: y, class: 'grid' }));
      const label = svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' });
      label.textContent = tick(max * f);
      root.append(label);
    }
    minutes.forEach((t, i) => {
      let y = top + plotH;
      const x = left + i * slot + (slot - barW) / 2;
      for (const r of (byMinute.get(t) || []).slice().sort((a, b) => workers.indexOf(a.worker) - workers.indexOf(b.worker))) {
        const h = plotH * Number(r.records_per_second) / max;
        y -= h;
        const bar = svg('rect', { x, y, width: barW, height: Math.max(h, 0.5), fill: color(r.worker) });
        const tip = svg('title');
        tip.textContent = `${Dash.time(r.minute)} ${r.worker}: ${Dash.count(r.records)} records (${Dash.rate(r.records_per_second)})`;
        bar.append(tip);
        root.append(bar);
      }
      const every = Math.max(1, Math.ceil(minutes.length / 8));
      if (i % every === 0 || i === minutes.length - 1) {
        const label = svg('text', { x: left + i * slot + slot / 2, y: height - 8, 'text-anchor': 'middle', class: 'axis' });
        label.textContent = new Date(t).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
        root.append(label);
      }
    });
    chart.replaceChildren(root);
    legend.replaceChildren(...workers.map(w => {
      const swatch = el('span', { class: 'swatch' });
      swatch.style.background = color(w);
      return el('li', null, swatch, w);
    }));
  }

  function renderWorkers(rows) {
    Dash.fillTable(document.getElementById('workers'), rows.map(w => {
      const status = w.shards_leased > 0 ? (w.lease_expired ? 'lease expired' : 'scoring') : 'idle';
      return el('tr', null,
        el('td', { class: 'mono', text: w.worker }),
        el('td', null, el('span', { class: `badge worker-${status.replace(/ /g, '-')}`, text: status })),
        el('td', { class: 'num', text: Dash.count(w.shards_leased) }),
        el('td', { class: 'num', text: Dash.count(w.shards_done) }),
        el('td', { class: 'num', text: `${Dash.count(w.records_done)} + ${Dash.count(w.records_quarantined)} quarantined` }),
        el('td', { text: Dash.time(w.last_update) }));
    }), 'No worker has taken a shard yet.', 6);
  }

  function renderShards(s) {
    const parts = [['done', s.done], ['leased', s.leased], ['pending', s.pending], ['failed', s.failed]];
    const total = Math.max(1, Number(s.total));
    document.getElementById('shard-bar').replaceChildren(...parts.filter(([, n]) => n > 0).map(([name, n]) => {
      const part = el('div', { class: `part shard-${name}`, title: `${name}: ${n}` });
      part.style.width = `${100 * n / total}%`;
      return part;
    }));
    const items = [...parts, ['expired leases', s.expired_leases], ['total', s.total]];
    document.getElementById('shards').replaceChildren(...items.map(([k, v]) => el('div', null, el('dt', { text: k }), el('dd', { text: Dash.count(v) }))));
  }

  function renderQuarantine(rows) {
    Dash.fillTable(document.getElementById('quarantine'), rows.map(q => el('tr', null,
      el('td', { class: 'reason', text: q.reason }),
      el('td', { class: 'num', text: Dash.count(q.records) }),
      el('td', { class: 'mono', text: q.example_record_id }),
      el('td', { text: Dash.dateTime(q.first_at) }),
      el('td', { text: Dash.dateTime(q.last_at) }))), 'No record quarantined.', 5);
  }

  function renderPrevalence(rows) {
    const shown = rows.filter(p => p.prevalence !== null).slice(0, 25);
    Dash.fillTable(document.getElementById('prevalence'), shown.map(p => {
      const value = Number(p.prevalence);
      const fill = el('div', { class: 'fill' });
      fill.style.width = `${100 * value}%`;
      return el('tr', null,
        el('td', null, el('a', {
          class: 'mono', title: 'review the records flagged for this label',
          href: `/runs/${encodeURIComponent(runId)}/flagged?${new URLSearchParams({ label: p.code })}`, text: p.code,
        })),
        el('td', { text: p.name }),
        el('td', { class: 'num', text: `${Number(p.threshold).toFixed(2)}${p.threshold_is_default ? '' : ' *'}` }),
        el('td', { class: 'num', text: `${Dash.count(p.records_positive)} / ${Dash.count(p.records_scored)}` }),
        el('td', null, el('div', { class: 'progress' },
          el('div', { class: 'bar small' }, fill),
          el('span', { class: 'percent', text: `${(100 * value).toFixed(1)}%` }))));
    }), 'Nothing scored yet.', 5);
  }

  Dash.poll(async () => {
    const [run, throughput, workers, shards, quarantine, prevalence] = await Promise.all(
      ['', '/throughput', '/workers', '/shards', '/quarantine', '/prevalence'].map(part => Dash.getJson(api + part)));
    renderRun(run);
    renderChart(throughput);
    renderWorkers(workers);
    renderShards(shards);
    renderQuarantine(quarantine);
    renderPrevalence(prevalence);
  });
})();
