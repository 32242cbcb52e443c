// Jobs: every job of the user with its status, live progress, plain-words errors, cancel and
// retry (a failed or cancelled job continues from the stage where it stopped).

import { get, TERMINAL } from '../api.js';
import { cancelJob, retryJob } from '../jobpanel.js';
import { alertBox, badge, busy, clear, etaText, fmtPct, fmtTime, h, JOB_KINDS, jobSummary, select, STAGE_WORDS } from '../ui.js';

export async function render(main, _params, ctx) {
  const [voices, conversions] = await Promise.all([get('/voices'), get('/conversions')]);
  const voiceNames = Object.fromEntries(voices.map((v) => [v.id, v.name]));
  const convNames = Object.fromEntries(conversions.map((c) => [c.id, c.source_track?.filename || 'a song']));
  const filter = select(
    [['', 'All'], ['queued', 'Queued'], ['running', 'Running'], ['succeeded', 'Succeeded'], ['failed', 'Failed'], ['cancelled', 'Cancelled']],
    ctx.query.get('status') || '',
    { id: 'status-filter', name: 'status' },
  );
  const box = h('div', { id: 'jobs', 'aria-busy': 'true' });
  let timer = null;
  let stopped = false;
  ctx.onCleanup(() => {
    stopped = true;
    clearTimeout(timer);
  });

  function subject(j) {
    if (j.conversion_id) return h('a', { href: `#/conversions/${j.conversion_id}` }, `Conversion of ${convNames[j.conversion_id] || 'a song'}`);
    if (j.voice_id) return h('a', { href: `#/voices/${j.voice_id}` }, `Voice ${voiceNames[j.voice_id] || ''}`.trim());
    return '—';
  }

  function row(j) {
    const active = !TERMINAL.has(j.status);
    const cancel = active ? h('button.danger.small', { type: 'button', 'aria-label': `Cancel ${JOB_KINDS[j.kind] || j.kind} job` }, 'Cancel') : null;
    cancel?.addEventListener('click', () =>
      busy(cancel, async () => {
        await cancelJob(j);
        await load();
      }),
    );
    const retry = j.status === 'failed' || j.status === 'cancelled'
      ? h('button.small', { type: 'button', 'aria-label': `Retry ${JOB_KINDS[j.kind] || j.kind} job` }, 'Retry')
      : null;
    retry?.addEventListener('click', () =>
      busy(retry, async () => {
        await retryJob(j);
        await load();
      }),
    );
    const progress = h('progress', { max: 1, value: j.status === 'succeeded' ? 1 : j.progress || 0, 'aria-label': 'Progress' });
    return [
      h(
        'tr',
        { dataset: { jobId: j.id, status: j.status, kind: j.kind } },
        h('td', h('strong', JOB_KINDS[j.kind] || j.kind), h('div.small', subject(j))),
        h('td', badge(j.status)),
        h(
          'td',
          progress,
          h(
            'div.small.muted',
            `${fmtPct(progress.value)}`,
            j.stage ? ` · ${STAGE_WORDS[j.stage] || j.stage}` : '',
            j.status === 'running' && j.eta_s != null ? ` · ${etaText(j.eta_s)}` : '',
          ),
        ),
        h('td.small', j.status === 'failed' ? h('span.error-text', j.error || jobSummary(j)) : jobSummary(j)),
        h('td.small', fmtTime(j.created_at)),
        h('td', cancel || retry),
      ),
    ];
  }

  let loadSeq = 0;
  async function load() {
    const seq = ++loadSeq;
    clearTimeout(timer);
    let jobs;
    try {
      jobs = await get(`/jobs?limit=200${filter.value ? `&status=${filter.value}` : ''}`);
    } catch (e) {
      if (!stopped && seq === loadSeq) clear(box, alertBox('error', 'Could not load the jobs', e.message));
      if (!stopped && seq === loadSeq) timer = setTimeout(load, 5000);
      return;
    }
    if (stopped || seq !== loadSeq) return; // a newer load (e.g. another filter) is on its way
    box.setAttribute('aria-busy', 'false');
    // re-rendering must not take the keyboard focus away from a row's button
    const focused = box.contains(document.activeElement) ? document.activeElement.closest('tr')?.dataset.jobId : null;
    if (!jobs.length) {
      clear(box, h('p.empty', filter.value ? `No ${filter.value} jobs.` : 'No jobs yet. Upload songs to a voice or start a conversion.'));
    } else {
      clear(
        box,
        h(
          'div.table-wrap',
          h(
            'table',
            h('caption.visually-hidden', 'Your jobs'),
            h('thead', h('tr', ['Job', 'Status', 'Progress', 'What is happening', 'Started', ''].map((x) => h('th', { scope: 'col' }, x)))),
            h('tbody', jobs.map(row)),
          ),
        ),
      );
    }
    if (focused) box.querySelector(`tr[data-job-id="${focused}"] button`)?.focus();
    // poll quickly while something runs, slowly otherwise
    clearTimeout(timer);
    timer = setTimeout(load, jobs.some((j) => !TERMINAL.has(j.status)) ? 1000 : 5000);
  }

  filter.addEventListener('change', () => {
    history.replaceState(null, '', filter.value ? `#/jobs?status=${filter.value}` : '#/jobs');
    box.setAttribute('aria-busy', 'true');
    clear(box, h('p.muted', 'Loading…')); // never show rows of the previous filter
    load();
  });

  clear(
    main,
    h('h1', 'Jobs'),
    h('div.row', { style: { marginBottom: '1rem' } }, h('label', { for: 'status-filter' }, 'Show'), filter),
    h('section.panel', box),
  );
  await load();
}
