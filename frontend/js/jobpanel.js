// The live job panel the voice, conversion and jobs views share: the job's view (stages,
// progress, ETA, plain-words error), following it live (Server-Sent Events, polling as the
// fallback), and its Cancel and Retry actions. Written once here; the views only say what
// to do with each update.

import { post, TERMINAL, watchJob } from './api.js';
import { jobView, toast } from './ui.js';

/** Ask a job to stop; returns the job as the server answered. */
export async function cancelJob(job) {
  const done = await post(`/jobs/${job.id}/cancel`);
  toast(done.status === 'cancelled' ? 'Job cancelled.' : 'Cancelling: the job stops at its next check.');
  return done;
}

/** Queue a failed or cancelled job again (it continues from the stage where it stopped). */
export async function retryJob(job, text) {
  const again = await post(`/jobs/${job.id}/retry`);
  toast(text || 'Queued again: it continues from the stage where it stopped.');
  return again;
}

/**
 * A job's panel, following the job until it ends.
 * @param {object} job the job as the API returned it
 * @param {{title?: string, onUpdate?: (job: object) => void, onEnd?: (job: object) => void,
 *   retryText?: string}} [opts] onUpdate: every change; onEnd: when the job is seen to end
 *   (not for a job that had ended already when the panel opened)
 * @returns {{el: HTMLElement, extra: HTMLElement, stop: () => void, follow: (job: object) => void, job: object}}
 */
export function jobPanel(job, { title, onUpdate, onEnd, retryText } = {}) {
  let stopWatch = null;
  let lastStatus = null;
  const view = jobView(job, {
    title,
    onCancel: async (j) => deliver(await cancelJob(j)),
    onRetry: async (j) => follow(await retryJob(j, retryText)),
  });

  function deliver(j) {
    const wasActive = lastStatus !== null && !TERMINAL.has(lastStatus);
    lastStatus = j.status;
    view.update(j);
    if (onUpdate) onUpdate(j);
    if (wasActive && TERMINAL.has(j.status) && onEnd) onEnd(j);
  }

  function stop() {
    if (stopWatch) stopWatch();
    stopWatch = null;
  }

  function follow(j) {
    stop();
    view.el.dataset.jobId = j.id;
    deliver(j);
    if (!TERMINAL.has(j.status)) stopWatch = watchJob(j.id, deliver);
  }

  follow(job);
  return {
    el: view.el,
    extra: view.extra,
    stop,
    follow,
    get job() {
      return view.job;
    },
  };
}
