// DOM helpers and shared widgets. Text always goes in through textContent (never innerHTML),
// so file names and messages from the server cannot inject markup.

/**
 * Create an element: h('a.card', {href: '#/x'}, 'text', child).
 * Attributes starting with "on" become listeners; `dataset`, `style` objects are merged;
 * `null`/`false` children and attributes are skipped.
 */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idCounter = 0;
export const uid = (prefix = 'id') => `${prefix}-${++idCounter}`;

// --- formatting -----------------------------------------------------------------------------

export function fmtBytes(n) {
  if (n == null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtDuration(s) {
  if (s == null || !Number.isFinite(s)) return '';
  s = Math.max(0, Math.round(s));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (hh) return `${hh} h ${String(mm).padStart(2, '0')} min`;
  if (mm) return `${mm} min ${String(ss).padStart(2, '0')} s`;
  return `${ss} s`;
}

/** The time left, in words (an estimate under a second reads as "finishing"). */
export const etaText = (s) => (s < 1 ? 'finishing…' : `about ${fmtDuration(s)} left`);

/** "from scratch" → "started from scratch"; "base model X" → "started from base model X". */
export const startsText = (s) => `started ${/^from\b/.test(s) ? '' : 'from '}${s}`;

export const fmtPct = (f) => `${Math.round((f || 0) * 100)}%`;

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function fmtNum(v, digits = 2) {
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(Math.abs(v) >= 100 ? 1 : digits);
}

export function titleCase(key) {
  const s = String(key).replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// --- messages -------------------------------------------------------------------------------

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const el = h(`div.toast.${kind}`, message);
  box.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

export function alertBox(kind, title, text) {
  return h(
    `div.alert.${kind}`,
    { role: kind === 'error' ? 'alert' : 'status' },
    title ? h('strong', title) : null,
    text ? h('span', text) : null,
  );
}

/** A refused request in words; a refusal for missing models links to the Models page. */
export function requestError(title, err) {
  const box = alertBox('error', title, err.message);
  if (err.status === 409 && /Models page/.test(err.message || '')) {
    box.append(' ', h('a', { href: '#/models', id: 'models-link' }, 'Open the Models page'));
  }
  return box;
}

export const badge = (text) => h(`span.badge.${String(text).replace(/\W/g, '')}`, text);

/** A definition list of a flat or nested object (report sections of unknown shape). */
export function kvList(obj) {
  const dl = h('dl.kv');
  for (const [k, v] of Object.entries(obj || {})) {
    let val;
    if (v && typeof v === 'object' && !Array.isArray(v)) val = kvList(v);
    else if (Array.isArray(v)) val = v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : fmtNum(x))).join(', ');
    else if (typeof v === 'boolean') val = v ? 'yes' : 'no';
    else val = v === null ? '—' : fmtNum(v);
    dl.append(h('dt', titleCase(k)), h('dd', val));
  }
  return dl;
}

/** Run fn(button) with the button disabled meanwhile; errors become a toast. */
export async function busy(button, fn) {
  const was = button.disabled;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } catch (e) {
    toast(e.message || String(e), 'error');
    return undefined;
  } finally {
    button.disabled = was;
    button.removeAttribute('aria-busy');
  }
}

// --- jobs -----------------------------------------------------------------------------------

export const JOB_KINDS = {
  ingest: 'Decode upload',
  voice: 'Voice training',
  conversion: 'Conversion',
  remix: 'Re-mix',
  voice_import: 'Voice import',
  voice_index: 'Index build',
  model_download: 'Model download',
};

export const STAGE_WORDS = {
  ingest: 'decode',
  separate: 'separate vocals',
  slice: 'slice',
  preprocess: 'extract features',
  train: 'train',
  convert: 'convert',
  mix: 'mix',
  report: 'report',
  import_voice: 'check the voice package',
  build_index: 'build the retrieval index',
  fetch_models: 'download',
};

/** What a job is doing, in one sentence. */
export function jobSummary(job) {
  const stage = STAGE_WORDS[job.stage] || job.stage || '';
  switch (job.status) {
    case 'queued':
      return job.message && !job.message.endsWith('starting') ? job.message : 'Waiting for a worker…';
    case 'running':
      return job.message || `Running: ${stage}`;
    case 'succeeded':
      return 'Finished.';
    case 'cancelled':
      return 'Cancelled.';
    case 'failed':
      return `Failed while running “${stage}”.`;
    default:
      return job.status;
  }
}

/**
 * A live view of one job: stages, overall and stage progress, ETA, message, error, cancel,
 * and retry once it failed or was cancelled. Returns {el, update(job)}.
 */
export function jobView(job, { onCancel, onRetry, title } = {}) {
  const el = h('section.job', { 'aria-label': title || JOB_KINDS[job.kind] || 'Job', dataset: { jobId: job.id } });
  const heading = h('div.spread');
  const stages = h('ol.stages', { 'aria-label': 'Stages' });
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Overall progress' });
  const numbers = h('div.numbers');
  const message = h('p.job-message', { 'aria-live': 'polite' });
  const errorSlot = h('div');
  const extra = h('div.job-extra');
  const cancel = onCancel
    ? h('button.danger.small', { type: 'button', onclick: () => busy(cancel, () => onCancel(current)) }, 'Cancel job')
    : null;
  const retry = onRetry
    ? h('button.small', { type: 'button', onclick: () => busy(retry, () => onRetry(current)) }, 'Retry job')
    : null;
  el.append(heading, stages, bar, numbers, message, errorSlot, extra);
  let current = job;

  function update(j) {
    current = j;
    el.dataset.status = j.status;
    el.dataset.stage = j.stage || '';
    clear(
      heading,
      h('strong', title || JOB_KINDS[j.kind] || j.kind),
      h(
        'span.row',
        badge(j.status),
        cancel && !['succeeded', 'failed', 'cancelled'].includes(j.status) ? cancel : null,
        retry && ['failed', 'cancelled'].includes(j.status) ? retry : null,
      ),
    );
    const at = j.stages.indexOf(j.stage);
    clear(
      stages,
      j.stages.map((s, i) => {
        let state = 'pending';
        if (j.status === 'succeeded' || i < at) state = 'done';
        else if (i === at) state = j.status === 'failed' ? 'failed' : j.status === 'cancelled' ? 'pending' : 'current';
        const label = STAGE_WORDS[s] || s;
        return h(`li.${state}`, { title: `${label}: ${state}` }, label, h('span.visually-hidden', ` (${state})`));
      }),
    );
    bar.value = j.status === 'succeeded' ? 1 : j.progress || 0;
    bar.setAttribute('aria-valuetext', fmtPct(bar.value));
    const parts = [h('span.pct', `Overall ${fmtPct(bar.value)}`)];
    if (j.status === 'running' && j.stage) parts.push(h('span', `${STAGE_WORDS[j.stage] || j.stage}: ${fmtPct(j.stage_progress)}`));
    if (j.status === 'running' && j.eta_s != null) parts.push(h('span.eta', etaText(j.eta_s)));
    if (j.attempts > 1) parts.push(h('span', `attempt ${j.attempts} of ${j.max_attempts}`));
    const starts = j.metrics?.train?.starts_from;
    if (starts) parts.push(h('span.starts', startsText(starts)));
    clear(numbers, parts);
    message.textContent = jobSummary(j);
    clear(errorSlot, j.status === 'failed' && j.error ? alertBox('error', 'What went wrong', j.error) : null);
  }
  update(job);
  return { el, update, extra, get job() { return current; } };
}

/** A form field over two grid columns (its control's text is long: the F0 methods). */
export function wide(el) {
  el.classList.add('wide');
  return el;
}

/** A labelled form field. */
export function field(label, control, hint) {
  const id = control.id || uid('f');
  control.id = id;
  return h('div.field', h('label', { for: id }, label, hint ? h('span.hint', ` ${hint}`) : null), control);
}

export function checkbox(label, attrs = {}) {
  const input = h('input', { type: 'checkbox', ...attrs });
  return { input, el: h('label.check', input, label) };
}

export function select(options, value, attrs = {}) {
  return h(
    'select',
    attrs,
    options.map(([v, label]) => h('option', { value: v, selected: v === value ? true : null }, label)),
  );
}
