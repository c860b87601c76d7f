'use strict';
// The stored evaluations, newest first, each a link to its page.
(() => {
  const { el } = Dash;

  function row(e) {
    const scores = e.run_id
      ? el('a', { href: `/runs/${encodeURIComponent(e.run_id)}`, text: e.run_name || e.run_id })
      : el('span', { class: 'mono', text: e.scores_source });
    return el('tr', { 'data-evaluation-id': e.evaluation_id },
      el('td', null, el('a', { class: 'run-name', href: `/evaluations/${encodeURIComponent(e.evaluation_id)}`, text: Dash.dateTime(e.created_at) })),
      el('td', null, scores),
      el('td', { class: 'mono', text: e.labels_file }),
      el('td', { class: 'num', text: Dash.count(e.cohort_size) }),
      el('td', { class: 'num', text: Dash.count(e.labels) }),
      el('td', { class: 'num', text: Dash.fixed(e.mean_auroc, 3) }),
      el('td', { class: 'num', text: Dash.fixed(e.mean_auprc, 3) }),
      el('td', { class: 'num', text: e.bootstrap > 0 ? Dash.count(e.bootstrap) : '—' }));
  }

  Dash.once(async () => {
    const evaluations = await Dash.getJson('/api/evaluations');
    document.getElementById('evaluations').tBodies[0].replaceChildren(...evaluations.map(row));
    document.getElementById('empty').hidden = evaluations.length > 0;
  });
})();
