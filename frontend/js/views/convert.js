// Convert: pick a voice, drop a source song, set the options, follow the upload; below, the
// user's earlier conversions.

import { get, upload } from '../api.js';
import { alertBox, badge, busy, checkbox, clear, field, fmtTime, h, jobSummary, requestError, select, wide } from '../ui.js';
import { dropzone, uploadQueue } from '../upload.js';
import { F0_METHODS } from './voice.js';

export const OUTPUT_FORMATS = [
  ['wav16', 'WAV, 16-bit'],
  ['wav24', 'WAV, 24-bit'],
  ['flac', 'FLAC (lossless, smaller)'],
  ['mp3', 'MP3'],
];

/** A labelled range slider with its value shown (and announced) next to it. */
export function slider(label, { min, max, step, value, name, format }) {
  const input = h('input', { type: 'range', min, max, step, value: String(value), name });
  const out = h('output', { for: '' });
  const show = () => {
    out.textContent = format(parseFloat(input.value));
    input.setAttribute('aria-valuetext', out.textContent);
  };
  input.addEventListener('input', show);
  show();
  const f = field(label, input);
  out.htmlFor = input.id;
  f.querySelector('label').append(' ', out);
  return { el: f, input };
}

export const fmtGain = (v) => `${v > 0 ? '+' : ''}${v.toFixed(1)} dB`;
export const fmtReverb = (v) => (v === 0 ? 'off' : `${Math.round(v * 100)}%`);

/** The mix options shared by the convert form and the re-mix form. */
export function mixFields(opts = {}) {
  const gain = slider('Vocal level', { min: -12, max: 12, step: 0.5, value: opts.vocal_gain_db ?? 0, name: 'vocal_gain_db', format: fmtGain });
  const reverb = slider('Reverb on the vocals', { min: 0, max: 1, step: 0.05, value: opts.reverb ?? 0, name: 'reverb', format: fmtReverb });
  const format = select(OUTPUT_FORMATS, opts.output_format || 'wav16', { name: 'output_format' });
  const transInst = checkbox('Transpose the instrumental with the vocals', { name: 'transpose_instrumental', checked: opts.transpose_instrumental ?? true });
  return {
    els: [gain.el, reverb.el, field('Output format', format), h('div.full', transInst.el)],
    values: () => ({
      vocal_gain_db: parseFloat(gain.input.value),
      reverb: parseFloat(reverb.input.value),
      output_format: format.value,
      transpose_instrumental: transInst.input.checked,
    }),
  };
}

export async function render(main, _params, ctx) {
  const [voices, conversions] = await Promise.all([get('/voices'), get('/conversions')]);
  const voiceNames = Object.fromEntries(voices.map((v) => [v.id, v.name]));
  const wanted = ctx.query.get('voice');

  const voiceSel = select(
    [['', voices.length ? 'Choose a voice…' : 'No voices yet'], ...voices.map((v) => [v.id, v.status === 'ready' ? v.name : `${v.name} (${v.status}: not trained yet)`])],
    wanted && voiceNames[wanted] ? wanted : voices.length === 1 ? voices[0].id : '',
    { name: 'voice_id', required: true },
  );
  const transpose = h('input', { type: 'number', name: 'transpose', min: -24, max: 24, step: 1, value: '0', inputmode: 'numeric' });
  const auto = checkbox('Automatic: fit the song into the voice’s range', { name: 'transpose_auto' });
  auto.input.addEventListener('change', () => (transpose.disabled = auto.input.checked));
  const f0 = select([['', 'The voice’s own method'], ...F0_METHODS], '', { name: 'f0_method' });
  const vocalsOnly = checkbox('The source is vocals only (no accompaniment to separate)', { name: 'vocals_only' });
  const mix = mixFields();
  // timbre controls (feature retrieval needs the voice's index, built at the end of training)
  const pct = (v) => (v === 0 ? 'off' : `${Math.round(v * 100)}%`);
  // retrieval: automatic (75 % when the voice has an index) until the slider is moved
  let retrievalTouched = false;
  const retrieval = slider('Pull towards the voice’s own sound (retrieval)', { min: 0, max: 1, step: 0.05, value: 0.75, name: 'retrieval_ratio', format: (v) => (retrievalTouched ? pct(v) : 'automatic (75 % with an index)') });
  for (const ev of ['pointerdown', 'keydown']) retrieval.input.addEventListener(ev, () => (retrievalTouched = true));
  const protect = slider('Protect consonants and breaths', { min: 0, max: 0.5, step: 0.01, value: 0.33, name: 'protect', format: (v) => (v >= 0.5 ? 'off' : `keep ${Math.round((1 - v) * 100)}% of the original`) });
  const envelope = slider('Follow the source’s loudness', { min: 0, max: 1, step: 0.05, value: 1, name: 'volume_envelope', format: (v) => (v >= 1 ? 'off' : `${Math.round((1 - v) * 100)}%`) });
  const timbreHelp = h(
    'ul.small.muted.full',
    h('li', 'Retrieval (default 75 % when the voice has an index, else off): blends each sound of the song with the closest sounds of the voice’s training audio; higher sounds more like the target, too high may slur words.'),
    h('li', 'Protect (default 0.33): keeps two thirds of the song’s own consonants and breaths where retrieval would smear them; lower protects more, 0.5 is off.'),
    h('li', 'Loudness (default off): gives the result the song’s loudness curve; useful when the voice comes out flat or pumping.'),
  );

  let files = [];
  const chosen = h('p.small', { id: 'chosen-files', 'aria-live': 'polite' }, 'No song chosen yet.');
  const zone = dropzone({
    label: 'Source song to convert',
    onFiles: (fs) => {
      files = fs;
      chosen.textContent = `Chosen: ${fs.map((f) => f.name).join(', ')}`;
    },
  });
  const queue = uploadQueue('Uploads of source songs');
  const errors = h('div');
  const submit = h('button', { type: 'submit' }, 'Upload and convert');

  const form = h(
    'form.fields',
    { 'aria-label': 'Conversion settings' },
    (() => {
      const f = field('Voice', voiceSel);
      f.classList.add('wide');
      return f;
    })(),
    h('div.full', zone.el, chosen),
    h('div.full', vocalsOnly.el),
    field('Transpose (semitones)', transpose, '(+12 = one octave up)'),
    h('div.field', auto.el),
    wide(field('Pitch (F0) method', f0)),
    retrieval.el,
    protect.el,
    envelope.el,
    timbreHelp,
    ...mix.els,
    h('div.full.row', submit),
    h('div.full', errors),
  );

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clear(errors);
    const problems = [];
    if (!voiceSel.value) problems.push('Choose the voice to convert into.');
    if (!files.length) problems.push('Choose or drop a source song.');
    const t = parseInt(transpose.value, 10);
    if (!auto.input.checked && (!Number.isFinite(t) || t < -24 || t > 24)) problems.push('Transpose must be a whole number from −24 to 24.');
    if (problems.length) {
      errors.append(alertBox('error', 'Check the form', problems.join(' ')));
      return;
    }
    const options = {
      transpose: auto.input.checked ? 'auto' : t,
      ...(retrievalTouched ? { retrieval_ratio: parseFloat(retrieval.input.value) } : {}),
      protect: parseFloat(protect.input.value),
      volume_envelope: parseFloat(envelope.input.value),
      ...mix.values(),
    };
    if (f0.value) options.f0_method = f0.value;
    const todo = files;
    files = [];
    chosen.textContent = 'No song chosen yet.';
    busy(submit, async () => {
      const made = [];
      for (const file of todo) {
        const item = queue.add(file);
        try {
          const res = await upload(
            '/conversions',
            [file],
            { voice_id: voiceSel.value, options: JSON.stringify(options), vocals_only: String(vocalsOnly.input.checked) },
            (l, tot) => item.progress(l, tot),
          ).promise;
          const conv = res[0];
          made.push(conv);
          item.set('ready', 'Uploaded. ', [h('a', { href: `#/conversions/${conv.id}` }, 'Follow the conversion')]);
        } catch (err) {
          item.set('failed', `Upload failed: ${err.message}`);
          if (err.status === 409) errors.append(requestError(`Could not convert ${file.name}`, err));
        }
      }
      if (made.length === 1 && todo.length === 1 && ctx.isCurrent()) ctx.navigate(`#/conversions/${made[0].id}`);
    });
  });

  const rows = conversions.map((c) =>
    h(
      'tr',
      { dataset: { conversionId: c.id } },
      h('td', h('a', { href: `#/conversions/${c.id}` }, c.source_track?.filename || 'source song')),
      h('td', voiceNames[c.voice_id] || '—'),
      h('td', c.job ? badge(c.job.status) : '—'),
      h('td.small', c.job ? jobSummary(c.job) : ''),
      h('td.small', fmtTime(c.created_at)),
    ),
  );

  clear(
    main,
    h('h1', 'Convert a song'),
    voices.length
      ? null
      : alertBox('info', 'No voices yet', 'Create a voice and train it on the singer’s songs first.'),
    h('section.panel', { 'aria-labelledby': 'convert-title' }, h('h2', { id: 'convert-title' }, 'New conversion'), form, queue.el),
    h(
      'section.panel',
      { 'aria-labelledby': 'conversions-title' },
      h('h2', { id: 'conversions-title' }, 'Your conversions'),
      conversions.length
        ? h(
            'div.table-wrap',
            h(
              'table',
              { id: 'conversion-list' },
              h('thead', h('tr', ['Source song', 'Voice', 'Status', 'Progress', 'Created'].map((x) => h('th', { scope: 'col' }, x)))),
              h('tbody', rows),
            ),
          )
        : h('p.empty', { id: 'conversion-list' }, 'No conversions yet.'),
    ),
  );
}
