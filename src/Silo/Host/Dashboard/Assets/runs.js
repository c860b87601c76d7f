'use strict';
// The runs list: one row per run with its progress bar, counts, rate, ETA and state, refreshed every few seconds.
(() => {
  const { el } = Dash;
  const table = document.getElementById('runs');
  const empty = document.getElementById('empty');

  function row(run) {
    const link = el('a', { href: `/runs/${encodeURIComponent(run.run_id)}`, class: 'run-name', text: run.name });
    const records = el('span', { class: 'records' },
      `${Dash.count(run.records_done)} scored · ${Dash.count(run.records_quarantined)} quarantined`,
      run.records_failed > 0 ? ` · ${Dash.count(run.records_failed)} failed` : null,
      run.records_skipped > 0 ? ` · ${Dash.count(run.records_skipped)} current, left out` : null,
      el('span', { class: 'of', text: ` of ${Dash.count(run.records_planned)}${run.planning_complete ? '' : '+'}` }));
    return el('tr', { 'data-run-id': run.run_id },
      el('td', null, link),
      el('td', null, Dash.badge(run.state)),
      el('td', null, Dash.progressBar(run)),
      el('td', null, records),
      el('td', { title: `last hour: ${Dash.rate(run.rate_last_hour)}`, text: Dash.rate(run.rate_last_minute) }),
      el('td', { text: Dash.eta(run) }),
      el('td', { text: Dash.dateTime(run.started_at || run.created_at) }));
  }

  Dash.poll(async () => {
    const runs = await Dash.getJson('/api/runs');
    table.tBodies[0].replaceChildren(...runs.map(row));
    empty.hidden = runs.length > 0;
  });
})();
