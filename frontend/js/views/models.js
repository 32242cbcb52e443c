// Models: the pretrained models the studio knows (content encoders, F0 nets, separation
// models, 5.0's pretrain and speaker encoder), whether each is installed and checked, a
// download on a worker (live progress, cancel) where the server has a network, an import of
// a file brought from elsewhere where it has none, and so-vits-svc 5.0's set in one click.

import { get, post, upload } from '../api.js';
import { jobPanel } from '../jobpanel.js';
import { alertBox, badge, busy, clear, fmtBytes, h, toast } from '../ui.js';

const KIND_WORDS = {
  content: 'Content encoders (what is sung)',
  f0: 'Pitch (F0) networks',
  separation: 'Vocal separation',
  base_model: 'Base models to fine-tune from',
  speaker: 'Speaker encoders',
  sidecar: 'Files separation models need beside them',
};

const STATE_WORDS = {
  ok: 'installed (hash checked)',
  recorded: 'installed (hash recorded)',
  unverified: 'installed (not checked yet)',
  mismatch: 'wrong file',
  changed: 'changed since installed',
  missing: 'missing',
};

export async function render(main, _params, ctx) {
  const stops = [];
  ctx.onCleanup(() => stops.forEach((s) => s()));
  const jobsBox = h('div', { id: 'model-jobs', 'aria-live': 'polite' });
  const presetBox = h('section.panel', { 'aria-labelledby': 'presets-title', id: 'presets' });
  const listBox = h('div', { id: 'models' });
  const errors = h('div');
  const verifyButton = h('button.secondary.small', { type: 'button' }, 'Check every installed file');

  let data = await get('/models');

  function download(body, label) {
    return async () => {
      clear(errors);
      try {
        const job = await post('/models/download', body);
        const panel = jobPanel(job, { title: `Download: ${label}`, onEnd: () => refresh() });
        jobsBox.prepend(panel.el);
        stops.push(panel.stop);
        toast(`Downloading ${label}…`);
      } catch (err) {
        errors.append(alertBox('error', `Could not download ${label}`, err.message));
      }
    };
  }

  function importControl(m) {
    const input = h('input', { type: 'file', id: `import-${m.name}`, 'aria-label': `Import a file as ${m.name}` });
    const note = h('span.small', { 'aria-live': 'polite' });
    input.addEventListener('change', async () => {
      const file = input.files?.[0];
      if (!file) return;
      clear(errors);
      note.textContent = 'Uploading and checking…';
      const up = upload(`/models/${encodeURIComponent(m.name)}/import`, [file], {}, (l, t) => {
        note.textContent = `Uploading ${Math.round((l / t) * 100)} %…`;
      }, { fileField: 'file' });
      try {
        await up.promise;
        note.textContent = '';
        toast(`Installed ${m.name}.`);
        await refresh();
      } catch (err) {
        note.textContent = '';
        errors.append(alertBox('error', `Could not import ${file.name} as ${m.name}`, err.message));
      }
      input.value = '';
    });
    return h('label.small.import', 'Import file: ', input, note);
  }

  function row(m) {
    const dl = h('button.small', { type: 'button', dataset: { download: m.name } }, m.installed ? 'Download again' : 'Download');
    dl.addEventListener('click', () => busy(dl, download({ names: [m.name] }, m.name)));
    return h(
      'li.model',
      { dataset: { model: m.name, state: m.state } },
      h(
        'div.spread',
        h('span', h('strong', m.name), ' ', badge(STATE_WORDS[m.state] || m.state)),
        h('span.small.muted', m.size ? fmtBytes(m.size) : m.installed_size ? fmtBytes(m.installed_size) : 'size unpublished'),
      ),
      h('p.small', m.description),
      h('p.small.muted', `${m.filename} · licence: ${m.licence}${m.requires.length ? ` · with ${m.requires.join(', ')}` : ''}`),
      m.state !== 'ok' && m.state !== 'missing' ? h('p.small', m.detail) : null,
      h('div.row', m.state === 'ok' ? null : dl, importControl(m)),
    );
  }

  function renderAll() {
    const kinds = [...new Set(data.models.map((m) => m.kind))];
    clear(
      presetBox,
      h('h2', { id: 'presets-title' }, 'Sets'),
      data.presets.map((p) => {
        const b = h('button', { type: 'button', dataset: { preset: p.name } }, p.missing.length ? `Download the ${p.missing.length} missing` : 'All installed');
        b.disabled = !p.missing.length;
        b.addEventListener('click', () => busy(b, download({ preset: p.name }, `the ${p.name} set`)));
        return h(
          'div.preset',
          h('h3', p.description),
          h('p.small', `${p.models.join(', ')}${p.note ? `. ${p.note}` : ''}`),
          p.missing.length ? h('p.small', `Missing: ${p.missing.join(', ')}`) : h('p.small', 'Every model of this set is installed.'),
          b,
        );
      }),
    );
    clear(
      listBox,
      kinds.map((k) =>
        h(
          'section.panel',
          { 'aria-labelledby': `kind-${k}` },
          h('h2', { id: `kind-${k}` }, KIND_WORDS[k] || k),
          h('ul.models', data.models.filter((m) => m.kind === k).map(row)),
        ),
      ),
    );
  }

  async function refresh(verify = false) {
    data = await get(`/models${verify ? '?verify=true' : ''}`);
    if (ctx.isCurrent()) renderAll();
  }

  verifyButton.addEventListener('click', () => busy(verifyButton, () => refresh(true)));
  clear(
    main,
    h('h1', 'Models'),
    h(
      'p.muted',
      `Pretrained models the studio uses, in ${data.models_dir}. Downloads run on a worker and are checked against the published hashes${data.mirror ? ` (from the mirror ${data.mirror})` : ''}; without a network, fetch a file elsewhere and import it here.`,
    ),
    h('div.row', verifyButton),
    errors,
    jobsBox,
    presetBox,
    listBox,
  );
  renderAll();
}
