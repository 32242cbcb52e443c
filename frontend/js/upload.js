// Drag-and-drop file picking and a per-file upload queue with progress bars.

import { clear, fmtBytes, fmtPct, h, uid } from './ui.js';

const ACCEPT =
  'audio/*,.wav,.flac,.mp3,.ogg,.opus,.m4a,.aac,.aif,.aiff,.webm,.mka,.wv,.caf,.au,.wma';

/**
 * A drop zone with a "Choose files" button (the keyboard path) and a hidden file input.
 * @param {{label:string, multiple?:boolean, onFiles:(files:File[])=>void}} opts
 */
export function dropzone({ label, multiple = true, onFiles, name = 'files' }) {
  const inputId = uid('file');
  const input = h('input', {
    type: 'file',
    id: inputId,
    name,
    accept: ACCEPT,
    multiple,
    class: 'visually-hidden',
    onchange: () => {
      if (input.files.length) onFiles([...input.files]);
      input.value = '';
    },
  });
  const button = h('button.secondary', { type: 'button', onclick: () => input.click() }, multiple ? 'Choose files…' : 'Choose a file…');
  const zone = h(
    'div.dropzone',
    { role: 'group', 'aria-label': label },
    h('p', h('strong', label)),
    h('p.muted.small', multiple ? 'Drag and drop audio files here, or' : 'Drag and drop an audio file here, or'),
    h('label', { for: inputId, class: 'visually-hidden' }, label),
    input,
    button,
  );
  let depth = 0; // dragenter/leave fire for children too
  zone.addEventListener('dragenter', (e) => {
    e.preventDefault();
    depth += 1;
    zone.classList.add('dragover');
  });
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  zone.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove('dragover');
  });
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove('dragover');
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) onFiles(multiple ? files : files.slice(0, 1));
  });
  return { el: zone, input, button };
}

/** A list of files being uploaded and processed, one row each. */
export function uploadQueue(label = 'Uploads') {
  const list = h('ul.queue', { 'aria-label': label });
  return {
    el: list,
    add(file) {
      const bar = h('progress', { max: 1, value: 0, 'aria-label': `Upload progress of ${file.name}` });
      const state = h('div.state', { 'aria-live': 'polite' }, 'Waiting to upload…');
      const li = h(
        'li',
        { dataset: { file: file.name, state: 'waiting' } },
        h('span.name', file.name, h('span.muted.small', ` (${fmtBytes(file.size)})`)),
        bar,
        state,
      );
      list.append(li);
      return {
        el: li,
        progress(loaded, total) {
          const f = total ? loaded / total : 0;
          bar.value = f;
          bar.setAttribute('aria-valuetext', fmtPct(f));
          li.dataset.state = 'uploading';
          li.dataset.progress = f.toFixed(3);
          state.textContent = `Uploading… ${fmtPct(f)} of ${fmtBytes(file.size)}`;
        },
        set(kind, text, children = []) {
          li.dataset.state = kind;
          li.className = kind;
          if (kind === 'ready' || kind === 'processing') bar.value = 1;
          clear(state, text, children);
        },
      };
    },
  };
}
