'use strict';
// A run's records flagged for one label (probability at or above the model's active threshold), highest first, a page
// at a time (keyset paging: the next page starts after the last row shown). The label list can be narrowed to a group.
(() => {
  const { el } = Dash;
  const parts = window.location.pathname.split('/').filter(Boolean);
  const runId = decodeURIComponent(parts[1] || '');
  const runApi = `/api/runs/${encodeURIComponent(runId)}`;
  const params = new URLSearchParams(window.location.search);
  const pageSize = 25;
  const groupSelect = document.getElementById('group');
  const labelSelect = document.getElementById('label');
  let prevalence = [];
  let pages = []; // the keysets of the pages shown so far: pages[k] starts page k (null for the first)
  let next = null;

  function showError(e) {
    const error = document.getElementById('error');
    error.textContent = `Could not load: ${e.message}`;
    error.hidden = false;
  }

  function fillLabels() {
    const group = groupSelect.value;
    const shown = prevalence.filter(p => !group || p.label_group === group)
      .sort((a, b) => (b.records_positive - a.records_positive) || (a.position - b.position));
    const current = labelSelect.value || params.get('label');
    labelSelect.replaceChildren(...shown.map(p => el('option', { value: p.code, text: `${p.code} · ${p.name} (${Dash.count(p.records_positive)} flagged)` })));
    if (shown.some(p => p.code === current)) labelSelect.value = current;
  }

  function keep() {
    const query = new URLSearchParams();
    if (labelSelect.value) query.set('label', labelSelect.value);
    if (groupSelect.value) query.set('group', groupSelect.value);
    window.history.replaceState(null, '', `${window.location.pathname}?${query}`);
  }

  async function load(pageIndex) {
    const label = labelSelect.value;
    if (!label) {
      Dash.fillTable(document.getElementById('flagged'), [], 'No label to show.', 5);
      return;
    }
    const query = new URLSearchParams({ label, limit: String(pageSize) });
    const after = pages[pageIndex];
    if (after) {
      query.set('after_probability', after.after_probability);
      query.set('after_record', after.after_record);
    }
    const page = await Dash.getJson(`${runApi}/flagged?${query}`);
    const l = page.label;
    document.getElementById('label-info').textContent =
      `${l.code} · ${l.name} · ${l.label_group}: ${Dash.count(l.records_positive)} of ${Dash.count(l.records_scored)} records ` +
      `${l.threshold_inclusive ? 'at or above' : 'above'} ${Number(l.threshold).toFixed(3)}` +
      (l.threshold_set_name ? ` (active set ${l.threshold_set_name} v${l.threshold_set_version})` : ' (global threshold, no active set for this label)');
    const first = pageIndex * pageSize;
    Dash.fillTable(document.getElementById('flagged'), page.records.map((r, i) => el('tr', { 'data-record-id': r.record_id },
      el('td', { class: 'num', text: Dash.count(first + i + 1) }),
      el('td', null, el('a', {
        class: 'mono record-link',
        href: `/runs/${encodeURIComponent(runId)}/record?${new URLSearchParams({ id: r.record_id, label })}`,
        text: r.record_id,
      })),
      el('td', { class: 'num', 'data-value': String(r.probability), text: Number(r.probability).toFixed(4) }),
      el('td', { text: Dash.dateTime(r.scored_at) }),
      el('td', { class: 'mono', text: r.scored_by_run === runId ? 'this run' : r.scored_by_run }))),
    'No record of this run is flagged for this label.', 5);
    next = page.next;
    pages = pages.slice(0, pageIndex + 1);
    if (next) pages[pageIndex + 1] = next;
    document.getElementById('page-info').textContent = page.records.length === 0 ? '' : `records ${first + 1}–${first + page.records.length}`;
    document.getElementById('next').disabled = !next;
    document.getElementById('first').disabled = pageIndex === 0;
    document.getElementById('next').dataset.page = String(pageIndex + 1);
  }

  groupSelect.addEventListener('change', () => { fillLabels(); keep(); pages = []; load(0).catch(showError); });
  labelSelect.addEventListener('change', () => { keep(); pages = []; load(0).catch(showError); });
  document.getElementById('next').addEventListener('click', e => load(Number(e.target.dataset.page)).catch(showError));
  document.getElementById('first').addEventListener('click', () => load(0).catch(showError));

  Dash.once(async () => {
    const [run, rows] = await Promise.all([Dash.getJson(runApi), Dash.getJson(`${runApi}/prevalence`)]);
    document.title = `Flagged records · ${run.name} · HubertEcg`;
    const link = document.getElementById('run-link');
    link.textContent = run.name;
    link.href = `/runs/${encodeURIComponent(runId)}`;
    document.getElementById('run-id').textContent = runId;
    prevalence = rows;
    const groups = [...new Set(rows.map(p => p.label_group))].sort();
    groupSelect.append(...groups.map(g => el('option', { value: g, text: g })));
    if (groups.includes(params.get('group'))) groupSelect.value = params.get('group');
    fillLabels();
    keep();
    await load(0);
  });
})();
