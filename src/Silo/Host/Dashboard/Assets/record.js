'use strict';
// One scored record as a clinician reads it: the 12 leads in the standard 3 x 4 layout (I, II, III | aVR, aVL, aVF |
// V1-V3 | V4-V6, 2.5 s each) and a 10 s lead II rhythm strip on ECG paper, drawn as SVG in millimetres: 25 mm/s and
// 10 mm/mV, minor grid lines every 1 mm (0.04 s, 0.1 mV) and major ones every 5 mm (0.2 s, 0.5 mV). The samples are
// read from storage now, in mV, by the same readers and lead mapping as the workers. Beside it the record's top
// findings against the active thresholds and its provenance. The record id is the only identifier shown.
(() => {
  const { el, svg } = Dash;
  const parts = window.location.pathname.split('/').filter(Boolean);
  const runId = decodeURIComponent(parts[1] || '');
  const params = new URLSearchParams(window.location.search);
  const recordId = params.get('id') || '';
  const label = params.get('label');

  const mmPerSecond = 25, mmPerMv = 10;
  const columnSeconds = 2.5;
  const left = 10, rowHeight = 35, firstBaseline = 20, width = left + 4 * columnSeconds * mmPerSecond + 5, height = 4 * rowHeight;
  const layout = [['I', 'aVR', 'V1', 'V4'], ['II', 'aVL', 'V2', 'V5'], ['III', 'aVF', 'V3', 'V6']];

  /** Polylines of samples [from, to) of one lead starting at x0, broken where a sample is missing (null). */
  function traces(lead, samples, from, to, x0, baseline, fs, cls) {
    const lines = [];
    let points = [], start = from;
    const flush = () => {
      if (points.length > 1) {
        lines.push(svg('polyline', {
          class: `trace ${cls}`, 'data-lead': lead, 'data-first-sample': start, 'data-x0': x0, 'data-baseline': baseline,
          'data-sampling-rate': fs, points: points.join(' '),
        }));
      }
      points = [];
    };
    for (let i = from; i < Math.min(to, samples.length); i++) {
      const v = samples[i];
      if (v === null) {
        flush();
        start = i + 1;
        continue;
      }
      const x = x0 + (i - from) / fs * mmPerSecond;
      const y = baseline - v * mmPerMv;
      points.push(`${x.toFixed(3)},${y.toFixed(3)}`);
    }
    flush();
    return lines;
  }

  function drawEcg(signal) {
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': '12-lead ECG, 25 mm/s, 10 mm/mV' });
    const grid = svg('g', { class: 'grid-lines' });
    for (let mm = 0; mm <= width; mm++) grid.append(svg('line', { x1: mm, x2: mm, y1: 0, y2: height, class: mm % 5 === 0 ? 'major' : 'minor' }));
    for (let mm = 0; mm <= height; mm++) grid.append(svg('line', { x1: 0, x2: width, y1: mm, y2: mm, class: mm % 5 === 0 ? 'major' : 'minor' }));
    root.append(grid);
    const fs = signal.sampling_rate;
    const index = name => signal.leads.indexOf(name);
    for (let row = 0; row < 4; row++) {
      const baseline = firstBaseline + row * rowHeight;
      // 1 mV calibration pulse, 0.2 s wide, at the start of each row.
      root.append(svg('polyline', {
        class: 'calibration',
        points: `2,${baseline} 3,${baseline} 3,${baseline - mmPerMv} 8,${baseline - mmPerMv} 8,${baseline} 9,${baseline}`,
      }));
    }
    layout.forEach((names, row) => {
      const baseline = firstBaseline + row * rowHeight;
      names.forEach((name, column) => {
        const x0 = left + column * columnSeconds * mmPerSecond;
        const from = Math.round(column * columnSeconds * fs), to = Math.round((column + 1) * columnSeconds * fs);
        if (column > 0) root.append(svg('line', { class: 'separator', x1: x0, x2: x0, y1: baseline - 3, y2: baseline + 3 }));
        const text = svg('text', { class: 'lead-name', x: x0 + 1, y: baseline - 12 });
        text.textContent = name;
        root.append(text, ...traces(name, signal.samples[index(name)], from, to, x0, baseline, fs, 'lead'));
      });
    });
    const rhythmBaseline = firstBaseline + 3 * rowHeight;
    const text = svg('text', { class: 'lead-name', x: left + 1, y: rhythmBaseline - 12 });
    text.textContent = 'II';
    root.append(text, ...traces('II', signal.samples[index('II')], 0, Math.round(10 * fs), left, rhythmBaseline, fs, 'rhythm'));
    document.getElementById('ecg').replaceChildren(root);
  }

  function renderFindings(findings) {
    Dash.fillTable(document.getElementById('findings'), findings.map(f => el('tr', { 'data-code': f.code },
      el('td', { class: 'mono', text: f.code }),
      el('td', { text: f.name }),
      el('td', { class: 'num', text: Number(f.probability).toFixed(4) }),
      el('td', { class: 'num', text: `${f.threshold_inclusive ? '≥' : '>'} ${Number(f.threshold).toFixed(3)}` }),
      el('td', { class: f.positive ? 'flag-yes' : null, text: f.positive ? 'yes' : 'no' }))), 'No findings.', 5);
  }

  function renderProvenance(r, source, signal) {
    const items = [
      ['Record', r.record_id],
      ['Model', `${r.model_name} (${r.model_id})${r.model_untrained ? ', untrained' : ''}`],
      ['Run', `${r.run_name} (${r.run_id})`],
      ['Scored by', r.scored_by_run === r.run_id ? 'this run' : `${r.scored_by_run_name} (${r.scored_by_run}), reused by this run`],
      ['Scored at', Dash.dateTime(r.scored_at)],
      ['Windows scored', Dash.count(r.windows_used)],
      ['Preprocessing', r.preprocessing_profile],
      ['Storage', source.container],
      ['Blob', source.blob],
      ['Version when scored', source.stored_version || '—'],
      ['Version now', source.current_version || '—'],
      ['Signal', signal ? `${signal.sampling_rate} Hz, ${signal.total_seconds.toFixed(1)} s (first ${signal.seconds.toFixed(1)} s drawn)` : '—'],
    ];
    document.getElementById('provenance').replaceChildren(...items.map(([k, v]) => el('div', null, el('dt', { text: k }), el('dd', { text: String(v) }))));
  }

  Dash.once(async () => {
    const link = document.getElementById('run-link');
    link.href = `/runs/${encodeURIComponent(runId)}`;
    if (label) {
      const back = document.getElementById('back-link');
      back.href = `/runs/${encodeURIComponent(runId)}/flagged?${new URLSearchParams({ label })}`;
      back.textContent = `back to the records flagged ${label}`;
      document.getElementById('back').hidden = false;
    }
    const data = await Dash.getJson(`/api/runs/${encodeURIComponent(runId)}/record?${new URLSearchParams({ id: recordId })}`);
    const r = data.record;
    document.title = `${r.record_id} · HubertEcg`;
    document.getElementById('record-id').textContent = r.record_id;
    link.textContent = r.run_name;
    renderFindings(data.findings);
    renderProvenance(r, data.source, data.signal);
    const changed = document.getElementById('changed');
    if (data.source.changed) {
      changed.textContent = `The record's source changed since it was scored: version ${data.source.current_version} now, ` +
        `${data.source.stored_version} when scored. The ECG drawn is the current one; the findings are the scored one's.`;
      changed.hidden = false;
    }
    const problem = document.getElementById('problem');
    if (data.problem) {
      problem.textContent = `The ECG cannot be drawn: ${data.problem}`;
      problem.hidden = false;
      document.getElementById('ecg').replaceChildren(el('p', { class: 'none', text: 'No ECG to draw.' }));
    } else {
      drawEcg(data.signal);
    }
  });
})();
