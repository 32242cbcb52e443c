// One conversion: live progress, then players for the mix, converted vocals and instrumental,
// A/B against the original song, waveforms, the quality report, downloads and re-mixing.

import { del, get, post } from '../api.js';
import { jobPanel } from '../jobpanel.js';
import { drawPitchHistogram, waveform } from '../charts.js';
import { alertBox, busy, clear, fmtBytes, fmtDuration, fmtTime, h, kvList, titleCase, toast } from '../ui.js';
import { mixFields, OUTPUT_FORMATS } from './convert.js';

const KIND_LABELS = {
  mix: 'Mix',
  converted_vocals: 'Converted vocals',
  instrumental: 'Instrumental',
  vocals: 'Original vocals (separated)',
  decoded: 'Original song (decoded)',
};

// what a user came for; everything else (F0 curves, the model-rate vocals, metrics) is listed
// under "More files"
const MAIN_KINDS = ['mix', 'converted_vocals', 'instrumental', 'vocals'];

const signed = (v, unit) => `${v > 0 ? '+' : ''}${Math.round(v * 10) / 10}${unit}`;

/** A mix's settings (its artifact's meta.settings: svc_core.mix.MixParams) in words. */
export function mixSettingsText(a, formats) {
  const st = a.meta?.settings || {};
  return [
    `vocals ${signed(st.vocal_gain_db ?? 0, ' dB')}`,
    `reverb ${Math.round((st.reverb_wet ?? 0) * 100)} %`,
    st.transpose_instrumental ? `instrumental ${signed(st.transpose_instrumental, ' st')}` : null,
    formats[st.output_format] || st.output_format,
  ].filter(Boolean).join(' · ');
}

const newestFirst = (arts) => [...arts].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));

const audioUrl = (a) => `${a.download_url}${a.download_url.includes('?') ? '&' : '?'}inline=true`;

/** Prefer a format browsers always play (WAV) for listening; the rest are downloads. */
function playable(arts) {
  return arts.find((a) => /wav/.test(a.content_type) || a.filename.endsWith('.wav')) || arts[0];
}

function player(title, url, id) {
  const audio = h('audio', { controls: true, preload: 'metadata', src: url, 'aria-label': `Play ${title}`, id });
  return h('div.player', { dataset: { player: id } }, h('h3', title), audio, waveform(url, audio, title));
}

/**
 * Switch between two recordings at the same position (A/B listening).
 * @param {{label:string, url:string}[]} sources
 */
function abCompare(sources) {
  const audios = sources.map((s) => {
    const a = new Audio();
    a.preload = 'auto';
    a.src = s.url;
    return a;
  });
  let active = sources.length - 1; // start on the result
  const buttons = sources.map((s, i) =>
    h('button.small', { type: 'button', 'aria-pressed': String(i === active), onclick: () => choose(i) }, s.label),
  );
  const play = h('button.small', { type: 'button', id: 'ab-play' }, 'Play');
  const time = h('span.small.muted', { 'aria-live': 'off' }, '0 s');
  function choose(i) {
    if (i === active) return;
    const from = audios[active];
    const to = audios[i];
    const playing = !from.paused;
    to.currentTime = Math.min(from.currentTime, Number.isFinite(to.duration) ? to.duration : from.currentTime);
    from.pause();
    if (playing) to.play().catch(() => {});
    active = i;
    buttons.forEach((b, j) => b.setAttribute('aria-pressed', String(j === i)));
  }
  play.addEventListener('click', () => {
    const a = audios[active];
    if (a.paused) a.play().catch((e) => toast(`Cannot play: ${e.message}`, 'error'));
    else a.pause();
  });
  for (const a of audios) {
    a.addEventListener('play', () => (play.textContent = 'Pause'));
    a.addEventListener('pause', () => {
      if (audios.every((x) => x.paused)) play.textContent = 'Play';
    });
    a.addEventListener('timeupdate', () => (time.textContent = fmtDuration(a.currentTime)));
  }
  const el = h(
    'div.player',
    { id: 'ab' },
    h('h3', 'A/B: original and result'),
    h('p.small.muted', 'Switch while it plays: the position is kept.'),
    h('div.ab', { role: 'group', 'aria-label': 'Which recording to hear' }, buttons, play, time),
  );
  return { el, stop: () => audios.forEach((a) => a.pause()) };
}

export async function render(main, [convId], ctx) {
  let conv = await get(`/conversions/${convId}`);
  const voice = await get(`/voices/${conv.voice_id}`).catch(() => null);
  const stops = [];
  ctx.onCleanup(() => stops.forEach((s) => s()));

  const jobBox = h('section.panel', { 'aria-labelledby': 'job-title', id: 'conversion-job' });
  const results = h('section.panel', { 'aria-labelledby': 'results-title', id: 'results', hidden: true });
  const report = h('section.panel', { 'aria-labelledby': 'quality-title', id: 'quality', hidden: true });
  const downloads = h('section.panel', { 'aria-labelledby': 'downloads-title', id: 'downloads', hidden: true });
  const remix = h('section.panel', { 'aria-labelledby': 'remix-title', id: 'remix', hidden: true });
  const opts = conv.options || {};

  // --- job ---------------------------------------------------------------------------------
  let panel = null;
  let shownJob = null;
  /** The job's live panel, in the progress section or (a re-mix) next to the button that
   * started it. */
  function showJob(job, where = null) {
    if (!job) {
      clear(jobBox, h('h2', { id: 'job-title' }, 'Progress'), h('p.empty', 'No job for this conversion.'));
      return;
    }
    if (panel) panel.stop();
    shownJob = job.id;
    panel = jobPanel(job, { title: job.kind === 'remix' ? 'Re-mix job' : 'Conversion job', onEnd: () => refresh() });
    if (where) {
      clear(where, panel.el);
      where.scrollIntoView({ block: 'nearest' });
    } else clear(jobBox, h('h2', { id: 'job-title' }, 'Progress'), panel.el);
  }
  stops.push(() => panel && panel.stop());

  // --- results: the newest mix on top, with its download; each mix labelled; the players,
  // A/B and mix numbers follow the mix picked ---------------------------------------------
  const formats = Object.fromEntries(OUTPUT_FORMATS);
  let ab = null;
  let shownResults = '';
  let chosenMix = null; // artifact id; null: the newest
  function renderResults() {
    const arts = conv.artifacts || [];
    const trackArts = conv.source_track?.artifacts || [];
    const byKind = (k) => [...arts, ...trackArts].filter((a) => a.kind === k);
    const mixes = newestFirst(byKind('mix'));
    const vocals = byKind('converted_vocals');
    const inst = byKind('instrumental');
    const key = [...mixes, ...vocals, ...inst].map((a) => a.id).join(',') + `|${chosenMix}`;
    if (key === shownResults) return; // unchanged: keep players (and playback) as they are
    shownResults = key;
    if (!mixes.length && !vocals.length) {
      results.hidden = true;
      return;
    }
    results.hidden = false;
    if (ab) ab.stop();
    const mix = mixes.find((m) => m.id === chosenMix) || mixes[0];
    const originalUrl = `/api/v1/tracks/${conv.source_track_id}/audio?variant=decoded`;
    const result = mix || playable(vocals);
    ab = abCompare([
      { label: 'Original song', url: originalUrl },
      { label: mix ? 'This mix' : 'Converted vocals', url: audioUrl(result) },
    ]);
    stops.push(() => ab && ab.stop());
    const picker = mixes.length > 1
      ? h(
          'fieldset.mixes',
          { id: 'mix-picker' },
          h('legend', `Mixes (${mixes.length}), newest first`),
          mixes.map((m, i) => {
            const input = h('input', { type: 'radio', name: 'mix', value: m.id, checked: m.id === mix.id });
            input.addEventListener('change', () => {
              chosenMix = m.id;
              renderResults();
            });
            return h('label.check', { dataset: { mixId: m.id } }, input, ` ${i === 0 ? 'Newest: ' : ''}${fmtTime(m.created_at)} — ${mixSettingsText(m, formats)}`);
          }),
        )
      : null;
    const mixNumbers = mix?.meta && Number.isFinite(mix.meta.mix_lufs)
      ? h('p.small', { id: 'mix-numbers' }, `This mix: ${mix.meta.mix_lufs} LUFS, true peak ${mix.meta.true_peak_dbtp} dBTP (limited, no clipping); ${mixSettingsText(mix, formats)}.`)
      : null;
    clear(
      results,
      h('h2', { id: 'results-title' }, 'Result'),
      mix
        ? h(
            'div.row.cover',
            h('a.button', { href: mix.download_url, download: mix.filename, id: 'download-cover', dataset: { kind: 'mix' } }, `Download cover (${formats[mix.meta?.settings?.output_format] || mix.filename.split('.').pop()})`),
            h('span.small.muted', `${mix.filename} · ${fmtBytes(mix.size_bytes)}`),
          )
        : null,
      picker,
      mixNumbers,
      ab.el,
      h(
        'div.stack',
        { style: { marginTop: '1rem' } },
        mix ? player(`Mix (${fmtTime(mix.created_at)})`, audioUrl(mix), 'play-mix') : null,
        vocals.length ? player('Converted vocals', audioUrl(playable(vocals)), 'play-vocals') : null,
        inst.length ? player('Instrumental', audioUrl(playable(inst)), 'play-instrumental') : null,
        player('Original song', originalUrl, 'play-original'),
      ),
    );
  }

  // --- quality report ----------------------------------------------------------------------
  function renderReport() {
    const r = conv.report;
    if (!r) {
      report.hidden = true;
      return;
    }
    report.hidden = false;
    const parts = [h('h2', { id: 'quality-title' }, 'Quality report')];
    if (r.verdicts?.length) parts.push(h('ul', { id: 'verdicts' }, r.verdicts.map((v) => h('li', v))));
    const q = r.quality || {};
    const pct = (v) => (Number.isFinite(v) ? `${Math.round(v * 100)} %` : '—');
    const num = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '—');
    const key = {
      'Similarity to the target voice': num(q.similarity_to_target),
      'Similarity to the source singer': num(q.similarity_to_source),
      'Notes within 50 cents of the melody': pct(q.pitch?.raw_pitch_accuracy),
      'Octave errors': pct(q.pitch?.octave_errors),
      'Transpose (semitones)': r.transpose ? `${r.transpose.semitones} (${r.transpose.mode})` : '—',

    };
    parts.push(h('div', { id: 'key-numbers' }, kvList(key)));
    const all = h('details', h('summary', 'All numbers'));
    for (const k of ['quality', 'transpose']) {
      if (r[k] && typeof r[k] === 'object') all.append(h('h3', titleCase(k)), kvList(r[k]));
    }
    parts.push(all);
    const cov = r.coverage;
    if (cov && typeof cov === 'object') {
      parts.push(h('h3', 'Pitch coverage'));
      if (cov.message) parts.push(h('p', cov.message));
      const vr = voice?.report;
      const histReport = cov.histogram ? cov : vr;
      if (histReport && (histReport.histogram?.length || histReport.range)) {
        const canvas = h('canvas.histogram', { role: 'img', 'aria-label': 'Pitch range of the voice and of the song' });
        const src = cov.source_range || cov.source || cov.range;
        parts.push(
          h(
            'figure',
            canvas,
            h('figcaption', 'Blue: notes the voice was trained on (green lines: its range). Orange dashed lines: the range of the converted melody.'),
          ),
        );
        requestAnimationFrame(() => drawPitchHistogram(canvas, histReport, src && src.low_hz ? src : null));
      }
    }
    const known = new Set(['verdicts', 'quality', 'transpose', 'mix', 'coverage']);
    const rest = Object.fromEntries(Object.entries(r).filter(([k]) => !known.has(k)));
    if (Object.keys(rest).length) parts.push(h('h3', 'Other'), kvList(rest));
    clear(report, parts);
  }

  // --- downloads ---------------------------------------------------------------------------
  function renderDownloads() {
    const arts = [...(conv.artifacts || []), ...(conv.source_track?.artifacts || [])].filter((a) => a.kind !== 'decoded');
    if (!arts.length) {
      downloads.hidden = true;
      return;
    }
    downloads.hidden = false;
    const rank = (a) => (MAIN_KINDS.includes(a.kind) ? MAIN_KINDS.indexOf(a.kind) : MAIN_KINDS.length);
    const sorted = newestFirst(arts).sort((a, b) => rank(a) - rank(b));
    const row = (a) =>
      h(
        'li',
        h(
          'span',
          h('strong', KIND_LABELS[a.kind] || titleCase(a.kind)),
          ' ',
          h('span.muted.small', [a.kind === 'mix' ? `${mixSettingsText(a, formats)} · ${fmtTime(a.created_at)}` : null, a.filename, fmtBytes(a.size_bytes)].filter(Boolean).join(' · ')),
        ),
        h('a.button.small', { href: a.download_url, download: a.filename, dataset: { kind: a.kind } }, `Download ${a.filename}`),
      );
    const main = sorted.filter((a) => MAIN_KINDS.includes(a.kind));
    const more = sorted.filter((a) => !MAIN_KINDS.includes(a.kind));
    clear(
      downloads,
      h('h2', { id: 'downloads-title' }, 'Downloads'),
      h('ul.downloads', main.map(row)),
      more.length ? h('details', { id: 'more-files' }, h('summary', `More files (${more.length}): pitch curves, intermediate audio, metrics`), h('ul.downloads', more.map(row))) : null,
    );
  }

  // --- re-mix ------------------------------------------------------------------------------
  let remixBuilt = false;
  function renderRemix() {
    const hasVocals = (conv.artifacts || []).some((a) => a.kind === 'converted_vocals');
    remix.hidden = !hasVocals;
    if (!hasVocals || remixBuilt) return;
    remixBuilt = true;
    const fields = mixFields(opts);
    const errors = h('div');
    const button = h('button', { type: 'submit' }, 'Mix again');
    const remixProgress = h('div.full', { id: 'remix-progress' });
    const form = h('form.fields', { 'aria-label': 'Re-mix settings' }, fields.els, h('div.full.row', button), remixProgress, h('div.full', errors));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      clear(errors);
      busy(button, async () => {
        try {
          const job = await post(`/conversions/${convId}/remix`, fields.values());
          toast('Re-mixing…');
          chosenMix = null; // the new mix, once it lands, is the one shown
          showJob(job, remixProgress);
        } catch (err) {
          const msg = err.status === 404 || err.status === 405 ? `Re-mixing is not available on this server yet (HTTP ${err.status}).` : err.message;
          errors.append(alertBox('error', 'Could not re-mix', msg));
        }
      });
    });
    clear(remix, h('h2', { id: 'remix-title' }, 'Re-mix with other settings'), h('p.muted.small', 'Uses the converted vocals again: no new conversion needed.'), form);
  }

  let refreshSeq = 0;
  async function refresh() {
    const seq = ++refreshSeq;
    let fresh;
    try {
      fresh = await get(`/conversions/${convId}`);
    } catch {
      return;
    }
    if (seq !== refreshSeq || !ctx.isCurrent()) return;
    conv = fresh;
    if (conv.job && conv.job.id !== shownJob) showJob(conv.job);
    renderResults();
    renderReport();
    renderDownloads();
    renderRemix();
  }

  const deleteButton = h('button.danger', { type: 'button' }, 'Delete this conversion');
  deleteButton.addEventListener('click', () => {
    if (!window.confirm('Delete this conversion and its files?')) return;
    busy(deleteButton, async () => {
      await del(`/conversions/${convId}`);
      toast('Conversion deleted.');
      ctx.navigate('#/convert');
    });
  });

  clear(
    main,
    h('p.small', h('a', { href: '#/convert' }, '← All conversions')),
    h('h1', `Conversion of ${conv.source_track?.filename || 'a song'}`),
    h(
      'p',
      'Into the voice ',
      voice ? h('a', { href: `#/voices/${voice.id}` }, voice.name) : h('em', 'deleted voice'),
      '. ',
      h(
        'span.muted.small',
        // the conversion's own settings; each mix's settings are shown with the mix
        'Converted with: ' +
          [
            `transpose ${opts.transpose === 'auto' ? 'automatic' : signed(opts.transpose ?? 0, '')}`,
            opts.f0_method ? `F0 ${opts.f0_method}` : 'F0 as the voice',
            Number.isFinite(opts.retrieval_ratio) ? `retrieval ${Math.round(opts.retrieval_ratio * 100)} %` : null,
          ].filter(Boolean).join(' · '),
      ),
    ),
    jobBox,
    results,
    report,
    downloads,
    remix,
    h('section.panel', h('h2', 'Delete'), deleteButton),
  );
  showJob(conv.job);
  renderResults();
  renderReport();
  renderDownloads();
  renderRemix();
}
