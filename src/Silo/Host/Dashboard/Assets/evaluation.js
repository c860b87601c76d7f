'use strict';
// One stored evaluation: its cohort, a sortable table of every label's metrics, and for a chosen label its ROC and
// precision-recall curves (SVG, from the points stored with the evaluation) with the model's active threshold marked.
(() => {
  const { el, svg } = Dash;
  const evaluationId = decodeURIComponent(window.location.pathname.split('/').filter(Boolean).pop() || '');
  const api = `/api/evaluations/${encodeURIComponent(evaluationId)}`;

  const columns = [
    { key: 'code', title: 'Label', type: 'text' },
    { key: 'name', title: 'Name', type: 'text' },
    { key: 'label_group', title: 'Group', type: 'text' },
    { key: 'positives', title: 'Positives', type: 'count' },
    { key: 'negatives', title: 'Negatives', type: 'count' },
    { key: 'auroc', title: 'AUROC', type: 'metric', lo: 'auroc_lo', hi: 'auroc_hi' },
    { key: 'auprc', title: 'AUPRC', type: 'metric', lo: 'auprc_lo', hi: 'auprc_hi' },
    { key: 'sensitivity_at_05', title: 'Sens. @0.5', type: 'metric' },
    { key: 'specificity_at_05', title: 'Spec. @0.5', type: 'metric' },
    { key: 'ppv_at_05', title: 'PPV @0.5', type: 'metric' },
    { key: 'npv_at_05', title: 'NPV @0.5', type: 'metric' },
    { key: 'f1_at_05', title: 'F1 @0.5', type: 'metric' },
    { key: 'youden_threshold', title: 'Youden threshold', type: 'metric' },
    { key: 'youden_sensitivity', title: 'Youden sens.', type: 'metric' },
    { key: 'youden_specificity', title: 'Youden spec.', type: 'metric' },
    { key: 'threshold', title: 'Active threshold', type: 'threshold' },
  ];

  function showError(e) {
    const error = document.getElementById('error');
    error.textContent = `Could not load: ${e.message}`;
    error.hidden = false;
  }

  let labels = [];
  let sort = null; // { key, direction: 'ascending' | 'descending' }
  let selected = new URLSearchParams(window.location.search).get('label');

  function renderEvaluation(e) {
    document.title = `Evaluation ${Dash.dateTime(e.created_at)} · HubertEcg`;
    document.getElementById('title').textContent = `Evaluation of ${e.run_name ? `run ${e.run_name}` : e.scores_source}`;
    const meta = document.getElementById('meta');
    meta.replaceChildren(el('code', { text: e.evaluation_id }), ' ',
      e.model_id ? `model ${e.model_id}` : 'model not recorded', ' · ',
      e.run_id ? el('a', { href: `/runs/${encodeURIComponent(e.run_id)}`, text: 'the run' }) : null,
      e.run_id ? ' · ' : null, `evaluated ${Dash.dateTime(e.created_at)}`);
    const stats = [
      ['Cohort (scored and labelled)', Dash.count(e.cohort_size)],
      ['Scored, no diagnoses', Dash.count(e.scores_only)],
      ['Labelled, no score', Dash.count(e.labels_only)],
      ['Labels', Dash.count(e.labels)],
      ['Mean AUROC', Dash.fixed(e.mean_auroc, 3)],
      ['Mean AUPRC', Dash.fixed(e.mean_auprc, 3)],
      ['Bootstrap', e.bootstrap > 0 ? `${Dash.count(e.bootstrap)} resamples (seed ${e.bootstrap_seed})` : 'none'],
      ['Labels file', `${e.labels_file} (${e.label_layout})`],
      ['Labels SHA-256', `${String(e.labels_sha256).slice(0, 16)}…`],
    ];
    document.getElementById('summary').replaceChildren(...stats.map(([k, v]) => el('div', null, el('dt', { text: k }), el('dd', { text: v }))));
  }

  function value(row, column) {
    const v = row[column.key];
    return v === null || v === undefined ? null : v;
  }

  function compare(a, b) {
    if (!sort) return a.position - b.position;
    const column = columns.find(c => c.key === sort.key);
    const x = value(a, column), y = value(b, column);
    if (x === null && y === null) return a.position - b.position;
    if (x === null) return 1; // undefined metrics last, whichever the direction
    if (y === null) return -1;
    const order = column.type === 'text' ? String(x).localeCompare(String(y)) : Number(x) - Number(y);
    return (order === 0 ? a.position - b.position : (sort.direction === 'ascending' ? order : -order));
  }

  function cell(row, column) {
    const v = value(row, column);
    const td = el('td', { 'data-key': column.key, 'data-value': v === null ? '' : String(v) });
    if (column.key === 'code') {
      td.append(el('button', { type: 'button', class: 'label-button', text: row.code, title: row.has_curve ? 'show its curves' : 'no curve: no positive or no negative' }));
    } else if (column.type === 'text') {
      td.textContent = v === null ? '—' : v;
    } else if (column.type === 'count') {
      td.className = 'num';
      td.textContent = Dash.count(v);
    } else if (column.type === 'threshold') {
      td.className = 'num';
      td.textContent = v === null ? '—' : `${row.threshold_inclusive ? '≥' : '>'} ${Number(v).toFixed(3)}`;
      if (row.threshold_set_name) td.title = `threshold set ${row.threshold_set_name} v${row.threshold_set_version}`;
    } else {
      td.className = 'num';
      td.textContent = Dash.fixed(v, 3);
      if (column.lo && row[column.lo] !== null && row[column.lo] !== undefined) {
        td.append(el('span', { class: 'interval', text: `[${Dash.fixed(row[column.lo], 3)}, ${Dash.fixed(row[column.hi], 3)}]` }));
      }
    }
    return td;
  }

  function renderHeader() {
    const tr = document.querySelector('#labels thead tr');
    tr.replaceChildren(...columns.map(column => {
      const th = el('th', { 'data-key': column.key },
        el('button', { type: 'button', text: column.title }));
      if (sort && sort.key === column.key) th.setAttribute('aria-sort', sort.direction);
      th.querySelector('button').addEventListener('click', () => {
        const first = column.type === 'text' ? 'ascending' : 'descending';
        sort = sort && sort.key === column.key
          ? { key: column.key, direction: sort.direction === 'ascending' ? 'descending' : 'ascending' }
          : { key: column.key, direction: first };
        renderHeader();
        renderRows();
      });
      return th;
    }));
  }

  function renderRows() {
    const rows = labels.slice().sort(compare).map(row => {
      const tr = el('tr', { 'data-code': row.code, class: row.code === selected ? 'selected' : null },
        ...columns.map(column => cell(row, column)));
      tr.querySelector('.label-button').addEventListener('click', () => select(row.code).catch(showError));
      return tr;
    });
    Dash.fillTable(document.getElementById('labels'), rows, 'This evaluation has no labels.', columns.length);
  }

  const size = 360, left = 46, right = 14, top = 12, bottom = 40;

  /** A unit-square plot: the curve through points ([x, y] in [0, 1]), an optional marker, axis names. */
  function plot(points, marker, xName, yName, chance) {
    const w = size - left - right, h = size - top - bottom;
    const x = v => left + w * v, y = v => top + h * (1 - v);
    const root = svg('svg', { viewBox: `0 0 ${size} ${size}`, role: 'img', 'aria-label': `${yName} against ${xName}` });
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      root.append(svg('line', { x1: x(f), x2: x(f), y1: y(0), y2: y(1), class: 'grid' }));
      root.append(svg('line', { x1: x(0), x2: x(1), y1: y(f), y2: y(f), class: 'grid' }));
      const xt = svg('text', { x: x(f), y: y(0) + 14, 'text-anchor': 'middle', class: 'axis' });
      xt.textContent = String(f);
      const yt = svg('text', { x: x(0) - 6, y: y(f) + 4, 'text-anchor': 'end', class: 'axis' });
      yt.textContent = String(f);
      root.append(xt, yt);
    }
    root.append(svg('rect', { x: x(0), y: y(1), width: w, height: h, class: 'frame' }));
    if (chance) root.append(svg('line', { x1: x(0), y1: y(0), x2: x(1), y2: y(1), class: 'chance' }));
    const xl = svg('text', { x: x(0.5), y: size - 6, 'text-anchor': 'middle', class: 'axis' });
    xl.textContent = xName;
    const yl = svg('text', { x: 12, y: y(0.5), 'text-anchor': 'middle', class: 'axis', transform: `rotate(-90 12 ${y(0.5)})` });
    yl.textContent = yName;
    root.append(xl, yl);
    root.append(svg('polyline', { class: 'curve', points: points.map(([a, b]) => `${x(a).toFixed(2)},${y(b).toFixed(2)}`).join(' ') }));
    if (marker) {
      const dot = svg('circle', { class: 'marker', cx: x(marker[0]).toFixed(2), cy: y(marker[1]).toFixed(2), r: 5 });
      const tip = svg('title');
      tip.textContent = marker[2];
      dot.append(tip);
      root.append(dot);
    }
    return root;
  }

  /** The stored point where the active threshold operates: the lowest stored threshold counted positive under it. */
  function operatingPoint(curve) {
    if (curve.threshold === null || curve.threshold === undefined) return -1;
    const t = Number(curve.threshold);
    let index = -1;
    curve.thresholds.forEach((v, i) => {
      if (v > t || (curve.threshold_inclusive && v === t)) index = i;
    });
    return index;
  }

  async function select(code) {
    selected = code;
    const params = new URLSearchParams(window.location.search);
    params.set('label', code);
    window.history.replaceState(null, '', `${window.location.pathname}?${params}`);
    for (const tr of document.querySelectorAll('#labels tbody tr')) tr.classList.toggle('selected', tr.dataset.code === code);
    const curve = await Dash.getJson(`${api}/curve?label=${encodeURIComponent(code)}`);
    const name = document.getElementById('curve-label');
    const roc = document.getElementById('roc'), pr = document.getElementById('pr');
    const info = document.getElementById('operating-point');
    name.textContent = `${curve.code}${curve.name ? ` · ${curve.name}` : ''} · AUROC ${Dash.fixed(curve.auroc, 3)} · AUPRC ${Dash.fixed(curve.auprc, 3)}`;
    document.getElementById('curves-card').dataset.code = curve.code;
    if (!curve.thresholds) {
      roc.replaceChildren(el('p', { class: 'none', text: curve.auroc === null ? 'No curve: this label has no positive or no negative record in the cohort.' : 'No curve stored: this evaluation was stored before curves were kept (re-run hubert-ecg evaluate).' }));
      pr.replaceChildren();
      info.textContent = '';
      return;
    }
    const i = operatingPoint(curve);
    const op = i < 0 ? null : { tpr: curve.tpr[i], fpr: curve.fpr[i], precision: curve.precision[i] };
    const rule = `${curve.threshold_inclusive ? '≥' : '>'} ${Dash.fixed(curve.threshold, 3)}${curve.threshold_set_name ? ` (set ${curve.threshold_set_name} v${curve.threshold_set_version})` : ' (global threshold)'}`;
    const text = op
      ? `Active threshold ${rule}: sensitivity ${op.tpr.toFixed(3)}, specificity ${(1 - op.fpr).toFixed(3)}, PPV ${op.precision.toFixed(3)} (at the nearest stored point)`
      : `Active threshold ${rule}: above every probability in the cohort (nothing flagged)`;
    roc.replaceChildren(plot([[0, 0], ...curve.fpr.map((f, k) => [f, curve.tpr[k]])],
      op ? [op.fpr, op.tpr, text] : [0, 0, text], '1 − specificity', 'sensitivity', true));
    pr.replaceChildren(plot(curve.tpr.map((r, k) => [r, curve.precision[k]]),
      op ? [op.tpr, op.precision, text] : null, 'recall', 'precision', false));
    info.textContent = text;
  }

  Dash.once(async () => {
    const { evaluation, labels: rows } = await Dash.getJson(api);
    labels = rows;
    renderEvaluation(evaluation);
    renderHeader();
    renderRows();
    if (selected && labels.some(l => l.code === selected)) await select(selected);
  });
})();
