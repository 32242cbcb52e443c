// Voices: the user's target singers, and a form to create a new one.

import { get, post, upload, watchJob } from '../api.js';
import { alertBox, badge, busy, clear, field, fmtDuration, h, jobSummary, JOB_KINDS } from '../ui.js';

function voiceCard(v) {
  const seconds = v.tracks.reduce((s, t) => s + (t.meta?.duration_s || 0), 0);
  const job = v.latest_job;
  return h(
    'li',
    h(
      'a.card',
      { href: `#/voices/${v.id}`, dataset: { voiceId: v.id } },
      h('div.spread', h('h3', v.name), badge(v.status)),
      v.description ? h('p.muted.small', v.description) : null,
      h(
        'p.small',
        `${v.tracks.length} reference track${v.tracks.length === 1 ? '' : 's'}`,
        seconds ? `, ${fmtDuration(seconds)} of audio` : '',
      ),
      job ? h('p.small.muted', `${JOB_KINDS[job.kind] || job.kind}: ${job.status} — ${jobSummary(job)}`) : null,
    ),
  );
}

export async function render(main, _params, ctx) {
  const voices = await get('/voices');
  const name = h('input', { type: 'text', name: 'name', required: true, maxlength: 200, autocomplete: 'off' });
  const description = h('textarea', { name: 'description', maxlength: 5000, rows: 2 });
  const errors = h('div');
  const submit = h('button', { type: 'submit' }, 'Create voice');
  const form = h(
    'form.fields',
    { 'aria-label': 'New voice' },
    field('Name', name, '(the singer)'),
    field('Notes', description, '(optional)'),
    h('div', submit),
    h('div.full', errors),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clear(errors);
    if (!name.value.trim()) {
      errors.append(alertBox('error', 'Give the voice a name.'));
      name.focus();
      return;
    }
    busy(submit, async () => {
      try {
        const v = await post('/voices', { name: name.value.trim(), description: description.value.trim() });
        ctx.navigate(`#/voices/${v.id}`);
      } catch (err) {
        errors.append(alertBox('error', 'Could not create the voice', err.message));
      }
    });
  });

  // import a voice: a package exported from svc-studio, or a singer's so-vits-svc 5.0 model
  const pkgInput = h('input', {
    type: 'file',
    name: 'package',
    accept: '.zip,.pth,.pt,application/zip',
    required: true,
  });
  const spkInput = h('input', { type: 'file', name: 'speaker', accept: '.npy' });
  const hpInput = h('input', { type: 'file', name: 'hparams', accept: '.yaml,.yml' });
  const importName = h('input', { type: 'text', name: 'import-name', maxlength: 200, autocomplete: 'off' });
  const importStatus = h('div', { role: 'status', 'aria-live': 'polite' });
  const importButton = h('button', { type: 'submit' }, 'Import voice');
  const importForm = h(
    'form.fields',
    { 'aria-label': 'Import a voice' },
    field('Voice package (.zip) or so-vits-svc 5.0 model (.pth)', pkgInput),
    field('Speaker vector (.spk.npy)', spkInput, '(5.0 models: e.g. speaker0.spk.npy)'),
    field('5.0 config (.yaml)', hpInput, '(5.0 exports of other sizes than base.yaml)'),
    field('Voice name', importName, '(optional: the file name)'),
    h('div', importButton),
    h('div.full', importStatus),
  );
  importForm.addEventListener('submit', (e) => {
    e.preventDefault();
    clear(importStatus);
    const file = pkgInput.files?.[0];
    if (!file) {
      importStatus.append(alertBox('error', 'Choose a voice package (.zip) or a 5.0 model first.'));
      return;
    }
    const speaker = spkInput.files?.[0];
    if (!speaker && !/\.zip$/i.test(file.name)) {
      importStatus.append(
        alertBox('error', 'A so-vits-svc 5.0 model needs its speaker vector (.spk.npy) too.'),
      );
      return;
    }
    const fields = {
      name: importName.value.trim() || file.name.replace(/\.svcvoice\.zip$|\.zip$|\.pth?$/i, ''),
    };
    if (speaker) fields.speaker = speaker;
    if (hpInput.files?.[0]) fields.hparams = hpInput.files[0];
    busy(importButton, async () => {
      try {
        const res = await upload('/voices/import', [file], fields).promise;
        importStatus.append(h('p.small', 'Uploaded; checking the model…'));
        await new Promise((resolve) => {
          watchJob(res.job.id, (job) => {
            if (job.status === 'succeeded') {
              ctx.navigate(`#/voices/${job.voice_id}`);
              resolve();
            } else if (job.status === 'failed' || job.status === 'cancelled') {
              clear(importStatus, alertBox('error', 'The voice could not be imported', job.error || job.status));
              resolve();
            }
          });
        });
      } catch (err) {
        clear(importStatus, alertBox('error', 'Could not import the voice', err.message));
      }
    });
  });

  clear(
    main,
    h('h1', 'Voices'),
    h(
      'section.panel',
      { 'aria-labelledby': 'new-voice' },
      h('h2', { id: 'new-voice' }, 'New voice'),
      h('p.muted.small', 'A voice is a target singer: upload their songs, train a model, then convert other songs into it.'),
      form,
      h('details', h('summary', 'Import a voice instead (svc-studio package or so-vits-svc 5.0 model)'), importForm),
    ),
    h(
      'section',
      { 'aria-labelledby': 'your-voices' },
      h('h2', { id: 'your-voices' }, 'Your voices'),
      voices.length
        ? h('ul.grid', { style: { listStyle: 'none', padding: 0 }, id: 'voice-list' }, voices.map(voiceCard))
        : h('p.empty', { id: 'voice-list' }, 'No voices yet. Create one above.'),
    ),
  );
}
