// One voice: reference songs (drag-and-drop upload with per-file progress), training with live
// progress and the loss curve, the coverage report with its pitch-range picture, previews and
// downloads.

import { del, get, post, TERMINAL, upload, watchJob } from '../api.js';
import { drawLossCurve, drawPitchHistogram, LOSS_SERIES } from '../charts.js';
import {
  alertBox,
  badge,
  busy,
  checkbox,
  clear,
  field,
  fmtBytes,
  fmtDuration,
  fmtNum,
  fmtPct,
  h,
  requestError,
  select,
  startsText,
  toast,
  wide,
} from '../ui.js';
import { jobPanel } from '../jobpanel.js';
import { dropzone, uploadQueue } from '../upload.js';

export const F0_METHODS = [
  ['crepe', 'crepe (most accurate; slow without a GPU)'],
  ['crepe-tiny', 'crepe tiny (fast, good)'],
  ['fcpe', 'FCPE (fastest neural, good)'],
  ['rmvpe', 'RMVPE'],
  ['harvest', 'harvest (CPU, accurate)'],
  ['dio', 'dio (fastest, rough)'],
  ['praat', 'praat (fast)'],
];

const ARTIFACT_LABELS = {
  spk: 'Speaker vector (.spk.npy)',
  spk_judge: 'GE2E speaker embedding (the quality report\'s judge)',
  voice_package: 'Voice package (.zip)',
  checkpoint: 'Model checkpoint',
  preview: 'Preview sample',
  retrieval_index: 'Retrieval index (.svcindex)',
};

// TrainResult.stopped_by (svc_core/train/trainer.py) in words
const STOP_REASONS = {
  max_steps: 'reached its step limit',
  max_epochs: 'reached its epoch limit',
  max_seconds: 'reached its time limit',
  plateau: 'the validation loss stopped improving',
};

/** The stop rules a run used (job.metrics.train.limits, written by the worker). */
function limitsText(limits) {
  if (!limits) return null;
  const parts = [];
  if (limits.max_steps) parts.push(`${limits.max_steps} steps`);
  if (limits.max_epochs) parts.push(`${limits.max_epochs} epochs`);
  if (limits.max_minutes) parts.push(`${fmtNum(limits.max_minutes)} min${limits.default_minutes ? ' (default)' : ''}`);
  return parts.length ? `stop rules: ${parts.join(', ')}` : null;
}

function trackDetails(t) {
  const m = t.meta || {};
  const parts = [];
  if (m.duration_s != null) parts.push(fmtDuration(m.duration_s));
  if (m.sample_rate) parts.push(`${(m.sample_rate / 1000).toFixed(1)} kHz`);
  if (m.channels) parts.push(m.channels === 1 ? 'mono' : m.channels === 2 ? 'stereo' : `${m.channels} channels`);
  if (m.format) parts.push(m.format);
  if (Number.isFinite(m.loudness_lufs)) parts.push(`${m.loudness_lufs.toFixed(1)} LUFS`);
  parts.push(fmtBytes(t.size_bytes));
  return parts.join(' · ');
}

function ingestSummary(job, track) {
  if (job.status === 'succeeded') return track ? `Ready: ${trackDetails(track)}` : 'Ready.';
  if (job.status === 'failed') return job.error || 'Decoding failed.';
  if (job.status === 'cancelled') return 'Cancelled.';
  if (job.status === 'queued') return 'Uploaded. Waiting for a worker to decode it…';
  return `Uploaded. Decoding… ${fmtPct(job.progress)}`;
}

export async function render(main, [voiceId], ctx) {
  let voice = await get(`/voices/${voiceId}`);
  const stops = [];
  ctx.onCleanup(() => stops.forEach((s) => s()));

  // --- header ------------------------------------------------------------------------------
  const title = h('h1');
  const status = h('span');
  const desc = h('p.muted');
  const header = h(
    'div',
    h('p.small', h('a', { href: '#/voices' }, '← All voices')),
    h('div.spread', title, h('div.row', status, h('a.button.secondary', { href: `#/convert?voice=${voiceId}` }, 'Convert a song with this voice'))),
    desc,
  );

  // --- reference songs ---------------------------------------------------------------------
  const vocalsOnly = checkbox('These files are vocals only (already separated: skip separation)', { name: 'vocals_only', id: 'vocals-only' });
  const queue = uploadQueue('Uploads of reference songs');
  const zone = dropzone({ label: 'Add reference songs of this singer', onFiles: (files) => startUploads(files) });
  const tracksBox = h('div', { id: 'tracks' });
  const activity = h('div', { id: 'activity' });
  const refs = h(
    'section.panel',
    { 'aria-labelledby': 'refs-title' },
    h('h2', { id: 'refs-title' }, 'Reference songs'),
    h('p.muted.small', 'Songs of the target singer: 15–30 minutes of clean singing give the best results. Full mixes are separated into vocals first.'),
    zone.el,
    h('div', { style: { marginTop: '.75rem' } }, vocalsOnly.el),
    queue.el,
    activity,
    tracksBox,
  );

  let uploading = Promise.resolve();
  function startUploads(files) {
    const items = files.map((f) => [f, queue.add(f)]);
    const flag = vocalsOnly.input.checked;
    // one request per file: each file gets its own progress bar, and a bad file fails alone
    uploading = uploading.then(async () => {
      for (const [file, item] of items) {
        const up = upload(`/voices/${voiceId}/tracks`, [file], { vocals_only: String(flag) }, (l, t) => item.progress(l, t));
        try {
          const res = await up.promise;
          item.set('processing', 'Uploaded. Waiting for a worker to decode it…');
          const trackId = res.tracks[0]?.id;
          stops.push(
            watchJob(res.job.id, async (job) => {
              let track = null;
              if (TERMINAL.has(job.status)) {
                await refresh();
                track = voice.tracks.find((t) => t.id === trackId);
              }
              const kind = job.status === 'succeeded' ? 'ready' : job.status === 'failed' || job.status === 'cancelled' ? 'failed' : 'processing';
              const text = job.status === 'failed' ? `Could not use this file: ${track?.error || job.error}` : ingestSummary(job, track);
              item.set(kind, text);
            }),
          );
          refresh();
        } catch (e) {
          const retry = h('button.secondary.small', { type: 'button', 'aria-label': `Retry uploading ${file.name}` }, 'Retry');
          retry.addEventListener('click', () => {
            item.el.remove();
            startUploads([file]);
          });
          // a 4xx names what is wrong with the file; a retry only helps for other failures
          item.set('failed', `Upload failed: ${e.message} `, e.status >= 400 && e.status < 500 ? [] : [retry]);
        }
      }
    });
  }

  async function deleteTrack(t, button) {
    if (!window.confirm(`Remove “${t.filename}” from this voice?`)) return;
    await busy(button, async () => {
      await del(`/tracks/${t.id}`);
      toast(`Removed ${t.filename}.`);
      await refresh();
    });
  }

  // players survive re-renders (a refresh must not stop what the user is listening to)
  const players = new Map();
  function trackAudio(t) {
    if (!players.has(t.id)) {
      players.set(
        t.id,
        h('audio', { controls: true, preload: 'metadata', src: `/api/v1/tracks/${t.id}/audio?variant=decoded`, 'aria-label': `Play ${t.filename}` }),
      );
    }
    return players.get(t.id);
  }

  function renderTracks() {
    const tracks = voice.tracks;
    if (!tracks.length) {
      clear(tracksBox, h('p.empty', 'No reference songs yet.'));
      return;
    }
    const rows = tracks.map((t) =>
      h(
        'tr',
        { dataset: { trackId: t.id, status: t.status } },
        h('td', h('strong', t.filename), t.vocals_only ? h('div', badge('vocals only')) : null),
        h('td', badge(t.status)),
        h(
          'td',
          t.status === 'ready' ? h('span.small', trackDetails(t)) : null,
          t.status === 'uploaded' ? h('span.small.muted', 'Decoding…') : null,
          t.error ? h('div.error-text.small', { role: 'note' }, t.error) : null,
        ),
        h(
          'td',
          t.status === 'ready' ? trackAudio(t) : null,
        ),
        h('td', (() => {
          const b = h('button.danger.small', { type: 'button', 'aria-label': `Remove ${t.filename}` }, 'Remove');
          b.addEventListener('click', () => deleteTrack(t, b));
          return b;
        })()),
      ),
    );
    const total = tracks.filter((t) => t.status === 'ready').reduce((s, t) => s + (t.meta?.duration_s || 0), 0);
    clear(
      tracksBox,
      h('h3', `Tracks (${tracks.length}; ${fmtDuration(total) || '0 s'} usable)`),
      h(
        'div.table-wrap',
        h(
          'table',
          h('caption.visually-hidden', 'Reference tracks'),
          h('thead', h('tr', ['File', 'Status', 'Details', 'Listen', ''].map((x) => h('th', { scope: 'col' }, x)))),
          h('tbody', rows),
        ),
      ),
    );
  }

  // --- training ----------------------------------------------------------------------------
  const trainDefaults = voice.settings?.train || {};
  const config = select([['base', 'Full quality (base config)'], ['tiny', 'Quick test (tiny config)']], trainDefaults.config || 'base', { name: 'config' });
  const f0 = select([['', 'automatic (crepe on a GPU worker, FCPE on a CPU one)'], ...F0_METHODS], trainDefaults.f0_method || '', { name: 'f0_method' });
  const ppgModel = h('input', { type: 'text', name: 'ppg_model', maxlength: 100, value: trainDefaults.ppg_model === undefined ? 'whisper-large-v2' : (trainDefaults.ppg_model ?? 'none') });
  const minSlice = h('input', { type: 'number', name: 'min_length_s', min: 0.3, max: 60, step: 'any', inputmode: 'decimal', value: (trainDefaults.slicer?.min_length_ms ?? 5000) / 1000 });
  const targetLufs = h('input', { type: 'number', name: 'target_lufs', min: -40, max: -6, step: 'any', inputmode: 'decimal', value: trainDefaults.target_lufs ?? -20 });
  const vecModel = h('input', { type: 'text', name: 'vec_model', maxlength: 100, value: trainDefaults.vec_model === undefined ? 'hubert-soft' : (trainDefaults.vec_model ?? 'none') });
  const maxEpochs = h('input', { type: 'number', name: 'max_epochs', min: 1, max: 100000, inputmode: 'numeric', value: trainDefaults.max_epochs ?? '' });
  const maxSteps = h('input', { type: 'number', name: 'max_steps', min: 1, inputmode: 'numeric', value: trainDefaults.max_steps ?? '' });
  const maxMinutes = h('input', { type: 'number', name: 'max_minutes', min: 1, step: 'any', inputmode: 'decimal', value: trainDefaults.max_minutes ?? '' });
  const baseModel = h('input', { type: 'text', name: 'base_model', maxlength: 200, value: trainDefaults.base_model ?? '', placeholder: 'none: train from scratch' });
  const sepModel = h('input', { type: 'text', name: 'separation_model', value: trainDefaults.separation_model ?? '', placeholder: 'default' });
  const dereverb = checkbox('Remove reverb from the vocals (de-reverb)', { name: 'dereverb', checked: !!trainDefaults.dereverb });
  const trainErrors = h('div', { id: 'train-errors' });
  const readyTracks = () => voice.tracks.filter((t) => t.status === 'ready').length;
  let trainErrorAt = null; // ready tracks when the shown error came
  const trainButton = h('button', { type: 'submit' }, 'Start training');
  // a value carried over from this voice's last run says so (a forgotten "20 epochs" once
  // silently overrode a new "400 steps")
  const lastRun = (key, hint) => (trainDefaults[key] != null ? '(from the last run)' : hint);
  for (const [input, key] of [[maxEpochs, 'max_epochs'], [maxSteps, 'max_steps'], [maxMinutes, 'max_minutes']]) {
    if (trainDefaults[key] != null) input.dataset.lastRun = 'true';
    input.addEventListener('input', () => {
      delete input.dataset.lastRun;
      showStopRules();
    });
  }
  const stopRules = h('p.small', { id: 'stop-rules', 'aria-live': 'polite' });
  function showStopRules() {
    const rules = [];
    const add = (input, unit) => {
      const v = parseFloat(input.value);
      if (Number.isFinite(v) && v > 0) rules.push(`${fmtNum(v)} ${unit}${input.dataset.lastRun ? ' (from the last run)' : ''}`);
    };
    add(maxSteps, 'steps');
    add(maxEpochs, 'epochs');
    add(maxMinutes, 'minutes');
    stopRules.textContent = rules.length
      ? `Training stops at the first of: ${rules.join(', ')}.`
      : 'No stop rule set: training stops after 120 minutes (the default).';
  }
  const trainForm = h(
    'form.fields',
    { 'aria-label': 'Training settings' },
    field('Model size', config),
    wide(field('Pitch (F0) method', f0, '(reused when converting)')),
    field('Stop after epochs', maxEpochs, lastRun('max_epochs', '(optional)')),
    h(
      'details.full',
      h('summary', 'More training options'),
      h(
        'div.fields',
        { style: { display: 'grid', gap: '.9rem 1.25rem', gridTemplateColumns: 'repeat(auto-fill, minmax(14rem, 1fr))', marginTop: '.75rem' } },
        field('Stop after steps', maxSteps, lastRun('max_steps', '(optional)')),
        field('Stop after minutes', maxMinutes, lastRun('max_minutes', '(optional)')),
        field('Base model to fine-tune', baseModel, '(optional)'),
        field('Separation model', sepModel, '(optional)'),
        field('Whisper PPG model', ppgModel, '(asset name, or none)'),
        field('HuBERT-soft model', vecModel, '(asset name, or none)'),
        field('Shortest slice (seconds)', minSlice, '(Audio Slicer: 5)'),
        field('Slice loudness (LUFS)', targetLufs, '(−20)'),
        h('div.full', dereverb.el),
      ),
    ),
    h('div.full', stopRules),
    h('div.full.row', trainButton),
    h('div.full', trainErrors),
  );
  const trainJobBox = h('div', { id: 'train-job' });
  const training = h(
    'section.panel',
    { 'aria-labelledby': 'train-title' },
    h('h2', { id: 'train-title' }, 'Training'),
    h('p.muted.small', 'Separates the vocals, slices them, extracts features and trains the model. Training can be stopped and resumed; the newest checkpoint is kept.'),
    trainForm,
    trainJobBox,
  );

  trainForm.addEventListener('submit', (e) => {
    e.preventDefault();
    clear(trainErrors);
    trainErrorAt = null;
    const body = { config: config.value, dereverb: dereverb.input.checked };
    if (f0.value) body.f0_method = f0.value;
    const asset = (input) => (input.value.trim() === '' || input.value.trim().toLowerCase() === 'none' ? null : input.value.trim());
    body.ppg_model = asset(ppgModel);
    body.vec_model = asset(vecModel);
    const minLen = parseFloat(minSlice.value);
    if (Number.isFinite(minLen)) body.slicer = { min_length_ms: Math.round(minLen * 1000) };
    const lufs = parseFloat(targetLufs.value);
    if (Number.isFinite(lufs)) body.target_lufs = lufs;
    const num = (input, key, int = true) => {
      if (input.value.trim() === '') return;
      const v = int ? parseInt(input.value, 10) : parseFloat(input.value);
      if (Number.isFinite(v)) body[key] = v;
    };
    num(maxEpochs, 'max_epochs');
    num(maxSteps, 'max_steps');
    num(maxMinutes, 'max_minutes', false);
    if (baseModel.value.trim()) body.base_model = baseModel.value.trim();
    if (sepModel.value.trim()) body.separation_model = sepModel.value.trim();
    busy(trainButton, async () => {
      try {
        const job = await post(`/voices/${voiceId}/train`, body);
        showTrainJob(job);
        refresh();
      } catch (err) {
        trainErrors.append(requestError('Could not start training', err));
        trainErrorAt = readyTracks();
      }
    });
  });

  let trainPanel = null;
  stops.push(() => trainPanel && trainPanel.stop());
  function showTrainJob(job) {
    if (trainPanel) trainPanel.stop();
    const chartCanvas = h('canvas.chart', { id: 'loss-chart', role: 'img', 'aria-label': 'Training loss curve' });
    // the legend's checkboxes pick the curves: the total loss is off at first, as on one
    // axis with the mel losses it flattens them
    const shown = new Set(LOSS_SERIES.filter((s) => s.key !== 'total').map((s) => s.key));
    let lastCurve = [];
    const legend = h(
      'div.legend',
      { role: 'group', 'aria-label': 'Curves shown' },
      LOSS_SERIES.map((s) => {
        const box = h('input', { type: 'checkbox', checked: shown.has(s.key), dataset: { series: s.key } });
        box.addEventListener('change', () => {
          if (box.checked) shown.add(s.key);
          else shown.delete(s.key);
          drawLossCurve(chartCanvas, lastCurve, shown);
        });
        return h('label', box, h('i', { style: { background: `var(${s.color})` } }), s.label);
      }),
    );
    const trainInfo = h('p.small', { id: 'train-info' });
    const figure = h('figure', { hidden: true }, chartCanvas, h('figcaption', legend, trainInfo));
    const onJob = (j) => {
      const curve = j.metrics?.curve;
      const tr = j.metrics?.train;
      if (curve?.length || tr) {
        figure.hidden = false;
        const last = curve?.[curve.length - 1];
        chartCanvas.dataset.points = String(curve?.length || 0);
        trainInfo.textContent = [
          tr?.step != null ? `step ${tr.step}` : null,
          tr?.epoch != null ? `epoch ${tr.epoch}` : null,
          last && Number.isFinite(last.total) ? `total loss ${fmtNum(last.total, 3)}` : null,
          last && Number.isFinite(last.mel) ? `mel loss ${fmtNum(last.mel, 3)}` : null,
          tr?.starts_from ? startsText(tr.starts_from) : null,
          limitsText(tr?.limits),
          tr?.stopped_by ? `stopped: ${STOP_REASONS[tr.stopped_by] || tr.stopped_by}` : null,
        ].filter(Boolean).join(' · ');
        chartCanvas.setAttribute('aria-label', `Training loss curve, ${curve?.length || 0} points. ${trainInfo.textContent}`);
        lastCurve = curve || [];
        drawLossCurve(chartCanvas, lastCurve, shown);
      }
    };
    trainPanel = jobPanel(job, {
      title: 'Training job',
      onUpdate: onJob,
      onEnd: () => refresh(),
      retryText: 'Training queued again: it resumes from its last checkpoint.',
    });
    trainPanel.extra.append(figure);
    clear(trainJobBox, h('h3', 'Latest training run'), trainPanel.el);
  }


  // --- coverage report ---------------------------------------------------------------------
  const reportBox = h('section.panel', { 'aria-labelledby': 'report-title', id: 'coverage', hidden: true });
  function renderReport() {
    const r = voice.report;
    if (!r) {
      reportBox.hidden = true;
      return;
    }
    reportBox.hidden = false;
    // field names: CoverageReportPublic in the API's schema (app/api/schemas.py)
    const range = r.range || {};
    const canvas = h('canvas.histogram', {
      id: 'pitch-histogram',
      role: 'img',
      'aria-label': range.low_note ? `Pitch histogram; the central 90 % of the sung notes lie between ${range.low_note} and ${range.high_note}` : 'Pitch histogram',
    });
    const rows = [];
    if (r.total_s != null) rows.push(['Audio after slicing', fmtDuration(r.total_s)]);
    if (r.voiced_s != null) rows.push(['Of it sung (voiced)', `${fmtDuration(r.voiced_s)}${r.voiced_share != null ? ` (${Math.round(r.voiced_share * 100)} %)` : ''}`]);
    if (r.slice_count != null) rows.push(['Slices', String(r.slice_count)]);
    if (range.low_note) rows.push(['Pitch range (central 90 % of notes)', `${range.low_note} – ${range.high_note} (${Math.round(range.low_hz)}–${Math.round(range.high_hz)} Hz)`]);
    if (range.min_note) rows.push(['Lowest and highest notes', `${range.min_note} – ${range.max_note} (${Math.round(range.min_hz)}–${Math.round(range.max_hz)} Hz)`]);
    if (range.median_note) rows.push(['Median note', range.median_note]);
    const loud = r.loudness || {};
    if (Number.isFinite(loud.mean_lufs)) rows.push(['Loudness', `${loud.mean_lufs.toFixed(1)} LUFS (slices within ${fmtNum(loud.spread_db)} dB)`]);
    const hist = r.histogram || [];
    clear(
      reportBox,
      h('h2', { id: 'report-title' }, 'Coverage report'),
      (r.warnings || []).map((w) => alertBox('warn', null, w)),
      (r.skipped || []).length
        ? h('details', h('summary', `${r.skipped.length} slice${r.skipped.length === 1 ? '' : 's'} left out`), h('ul', r.skipped.map((x) => h('li', x))))
        : null,
      h('dl.kv', rows.map(([k, v]) => [h('dt', k), h('dd', v)])),
      hist.length || range.low_hz
        ? h(
            'figure',
            canvas,
            h('figcaption', 'Seconds sung per note. Blue bars lie inside the voice\'s range: the central 90 % of its sung time, between the green lines. Conversions sound best inside this range.'),
          )
        : null,
      hist.length
        ? h(
            'details',
            h('summary', 'Histogram as a table'),
            h('table', h('thead', h('tr', h('th', 'Note'), h('th', 'Seconds'))), h('tbody', hist.map((b) => h('tr', h('td', b.note), h('td', fmtNum(b.seconds)))))),
          )
        : null,
    );
    requestAnimationFrame(() => drawPitchHistogram(canvas, r));
  }

  // --- previews and downloads --------------------------------------------------------------
  // a retrain or an index build supersedes the package, index, vectors and metrics: the
  // newest of each kind is the one conversions use (older files stay stored)
  const newestPerKind = (arts) => {
    const newest = new Map();
    for (const a of arts) {
      const seen = newest.get(a.kind);
      if (!seen || a.created_at >= seen.created_at) newest.set(a.kind, a);
    }
    return arts.filter((a) => newest.get(a.kind) === a);
  };
  const outputs = h('section.panel', { 'aria-labelledby': 'outputs-title', id: 'outputs', hidden: true });
  function renderOutputs() {
    const arts = voice.artifacts || [];
    if (!arts.length) {
      outputs.hidden = true;
      return;
    }
    outputs.hidden = false;
    const previews = arts.filter((a) => a.kind === 'preview');
    clear(
      outputs,
      h('h2', { id: 'outputs-title' }, 'Model, previews and downloads'),
      previews.length
        ? h(
            'div.grid',
            previews.map((a) =>
              h(
                'div.player',
                h('h3', a.meta?.label || a.filename),
                h('audio', { controls: true, preload: 'none', src: `${a.download_url}${a.download_url.includes('?') ? '&' : '?'}inline=true`, 'aria-label': `Preview ${a.filename}` }),
                a.meta?.step != null ? h('p.small.muted', `after step ${a.meta.step}`) : null,
              ),
            ),
          )
        : null,
      h(
        'ul.downloads',
        newestPerKind(arts.filter((a) => a.kind !== 'preview'))
          .map((a) =>
            h(
              'li',
              h('span', h('strong', ARTIFACT_LABELS[a.kind] || a.kind), ' ', h('span.muted.small', `${a.filename} · ${fmtBytes(a.size_bytes)}`)),
              h('a.button.small', { href: a.download_url, download: a.filename, dataset: { kind: a.kind } }, `Download ${a.filename}`),
            ),
          ),
      ),
    );
  }

  // --- retrieval index ---------------------------------------------------------------------
  // built at the end of training; a voice imported without one (or one whose songs changed)
  // gets it from its uploaded songs: POST /voices/{id}/index
  const indexButton = h('button', { type: 'button', id: 'build-index' }, 'Build the index from this voice’s songs');
  const indexErrors = h('div', { role: 'alert' });
  const indexJobBox = h('div', { id: 'index-job' });
  const indexState = h('p.small', { id: 'index-state' });
  const indexBox = h(
    'section.panel',
    { 'aria-labelledby': 'index-title', id: 'retrieval', hidden: true },
    h('h2', { id: 'index-title' }, 'Retrieval index'),
    h('p.muted.small', 'Conversion pulls each sound of a song towards the closest sounds of this singer’s own recordings, which makes it sound less like the source singer. The index of those sounds is built from the songs uploaded above, with the voice’s own encoders; the model is not changed.'),
    indexState,
    h('div.actions', indexButton),
    indexErrors,
    indexJobBox,
  );
  indexButton.addEventListener('click', () => {
    clear(indexErrors);
    busy(indexButton, async () => {
      try {
        const job = await post(`/voices/${voiceId}/index`, {});
        showIndexJob(job);
      } catch (err) {
        indexErrors.append(requestError('Could not start the index build', err));
      }
    });
  });
  let indexPanel = null;
  stops.push(() => indexPanel && indexPanel.stop());
  function showIndexJob(job) {
    if (indexPanel) indexPanel.stop();
    indexPanel = jobPanel(job, { title: 'Index build', onEnd: () => refresh() });
    clear(indexJobBox, indexPanel.el);
  }
  function renderIndex() {
    const arts = voice.artifacts || [];
    if (!arts.some((a) => a.kind === 'voice_package')) {
      indexBox.hidden = true;
      return;
    }
    indexBox.hidden = false;
    const index = newestPerKind(arts.filter((a) => a.kind === 'retrieval_index'))[0];
    const ready = readyTracks();
    if (index) {
      const dims = Object.entries(index.meta?.dims || {}).map(([k, d]) => `${k} ${d}-d`).join(', ');
      // meta.features: {ppg: {vectors, indexed}, vec: {...}} (svc_core.retrieval)
      const counts = Object.values(index.meta?.features || {}).map((f) => f.vectors).filter(Number.isFinite);
      const frames = counts.length ? Math.max(...counts) : null;
      indexState.textContent = `This voice has a retrieval index${frames != null ? ` of ${frames.toLocaleString()} frames` : ''}${dims ? ` (${dims})` : ''}. Rebuild it after adding songs.`;
      indexButton.textContent = 'Rebuild the index from this voice’s songs';
    } else {
      indexState.textContent = ready
        ? 'This voice has no retrieval index yet, so its conversions cannot use retrieval (everything else works). Build it from the songs uploaded above.'
        : 'This voice has no retrieval index yet, so its conversions cannot use retrieval (everything else works). Upload a few songs of this singer above, then build it.';
      indexButton.textContent = 'Build the index from this voice’s songs';
    }
    indexState.dataset.state = index ? 'built' : 'missing';
    indexButton.disabled = !ready;
    indexButton.title = ready ? '' : 'Upload songs of this singer first';
  }

  // --- delete ------------------------------------------------------------------------------
  const deleteButton = h('button.danger', { type: 'button' }, 'Delete this voice');
  deleteButton.addEventListener('click', () => {
    if (!window.confirm(`Delete the voice “${voice.name}” with its tracks, model and conversions?`)) return;
    busy(deleteButton, async () => {
      await del(`/voices/${voiceId}`);
      toast(`Deleted ${voice.name}.`);
      ctx.navigate('#/voices');
    });
  });

  function renderHeader() {
    title.textContent = voice.name;
    clear(status, badge(voice.status));
    desc.textContent = voice.description || '';
  }

  let refreshSeq = 0;
  async function refresh() {
    const seq = ++refreshSeq;
    let fresh;
    try {
      fresh = await get(`/voices/${voiceId}`);
    } catch {
      return;
    }
    if (seq !== refreshSeq) return; // a newer refresh is on its way
    voice = fresh;
    if (!ctx.isCurrent()) return;
    // a refused start is stale once the tracks changed under it (another one is ready)
    if (trainErrorAt != null && readyTracks() > trainErrorAt) {
      clear(trainErrors);
      trainErrorAt = null;
    }
    renderHeader();
    renderTracks();
    renderReport();
    renderOutputs();
    renderIndex();
  }

  clear(main, header, refs, training, reportBox, outputs, indexBox, h('section.panel', h('h2', 'Delete'), h('p.muted.small', 'Removes the voice, its uploads, model files and conversions.'), deleteButton));
  renderHeader();
  renderTracks();
  renderReport();
  renderOutputs();
  renderIndex();
  showStopRules();

  // jobs already running for this voice (e.g. started in another tab)
  const jobs = await get(`/jobs?voice_id=${voiceId}&limit=50`);
  const lastTrain = jobs.find((j) => j.kind === 'voice');
  if (lastTrain) showTrainJob(lastTrain);
  const lastIndex = jobs.find((j) => j.kind === 'voice_index');
  if (lastIndex) showIndexJob(lastIndex);
  for (const j of jobs.filter((x) => x.kind === 'ingest' && !TERMINAL.has(x.status))) {
    const panel = jobPanel(j, {
      onEnd: () => {
        refresh();
        setTimeout(() => panel.el.remove(), 4000);
      },
    });
    activity.append(panel.el);
    stops.push(panel.stop);
  }
}
