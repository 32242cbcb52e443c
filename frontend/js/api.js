// The REST API client. The browser signs in once (POST /auth/login sets an HttpOnly cookie),
// so fetch, XHR, EventSource, <audio src> and download links all authenticate the same way.

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const STATUS_WORDS = {
  0: 'The server could not be reached. Check that svc-studio is running.',
  401: 'You are not signed in (or your session expired).',
  403: 'You are not allowed to do that.',
  404: 'Not found.',
  405: 'This server does not support that action yet.',
  413: 'The file is too large.',
  415: 'That file type is not supported.',
  500: 'The server had an internal error. Try again; if it keeps happening, the server log says why.',
  502: 'The server is not answering (bad gateway).',
  503: 'The service is not available right now.',
};

/** A plain-words message from an error response body (FastAPI `detail`: a string or a list of
 * validation errors). */
export function messageFrom(status, body) {
  let detail = body && typeof body === 'object' ? body.detail : null;
  if (typeof body === 'string' && body.trim() && !body.trim().startsWith('<')) detail = body.trim();
  if (Array.isArray(detail)) {
    detail = detail
      .map((d) => {
        const where = (d.loc || []).filter((x) => x !== 'body').join(' → ');
        return where ? `${where}: ${d.msg}` : d.msg;
      })
      .join('; ');
  }
  if (status === 404 && detail === 'Not Found') detail = null; // a route that does not exist
  if (status === 405 && detail === 'Method Not Allowed') detail = null;
  if (status >= 500 && /^internal server error$/i.test(detail || '')) detail = null;
  return detail || STATUS_WORDS[status] || `The request failed (HTTP ${status}).`;
}

let onUnauthorized = () => {};
/** Called when any request answers 401 (the app shows the sign-in screen). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body, { quiet401 = false } = {}) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, opts);
  } catch {
    throw new ApiError(0, STATUS_WORDS[0]);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  if (!res.ok) {
    if (res.status === 401 && !quiet401) onUnauthorized();
    throw new ApiError(res.status, messageFrom(res.status, data));
  }
  return data;
}

export const get = (path, o) => request('GET', path, undefined, o);
export const post = (path, body, o) => request('POST', path, body, o);
export const patch = (path, body) => request('PATCH', path, body);
export const del = (path) => request('DELETE', path);

/**
 * Upload files as multipart/form-data with XMLHttpRequest, for its upload progress events.
 * @param {string} path API path
 * @param {File[]} files sent as the repeated form field `files`
 * @param {Record<string,string>} fields other form fields
 * @param {(loaded:number,total:number)=>void} onProgress bytes sent so far
 * @returns {{promise: Promise<any>, abort: () => void}}
 */
export function upload(path, files, fields, onProgress, { fileField = 'files' } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields || {})) form.append(k, v);
    for (const f of files) form.append(fileField, f, f.name);
    xhr.open('POST', API + path);
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress?.(e.loaded, e.total);
    };
    xhr.onload = () => {
      let data = xhr.responseText;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        /* keep the text */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else {
        if (xhr.status === 401) onUnauthorized();
        reject(new ApiError(xhr.status, messageFrom(xhr.status, data)));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, 'The upload was interrupted (network error).'));
    xhr.onabort = () => reject(new ApiError(0, 'The upload was cancelled.'));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Follow a job live: Server-Sent Events from /jobs/{id}/events, falling back to polling when
 * EventSource is missing or keeps failing. Calls onUpdate(job) on each change.
 * @returns {() => void} stop following
 */
export function watchJob(jobId, onUpdate, { pollMs = 1000 } = {}) {
  let stopped = false;
  let es = null;
  let timer = null;
  let failures = 0;
  let last = null;

  const deliver = (job) => {
    if (stopped) return;
    last = job;
    onUpdate(job);
    if (TERMINAL.has(job.status)) stop();
  };

  const poll = async () => {
    if (stopped) return;
    try {
      deliver(await get(`/jobs/${jobId}`));
    } catch (e) {
      if (e.status === 404 || e.status === 401) return stop();
    }
    if (!stopped) timer = setTimeout(poll, pollMs);
  };

  const stop = () => {
    stopped = true;
    if (es) es.close();
    if (timer) clearTimeout(timer);
  };

  if (typeof EventSource === 'undefined') {
    poll();
    return stop;
  }
  es = new EventSource(`${API}/jobs/${jobId}/events`);
  es.addEventListener('job', (e) => {
    failures = 0;
    try {
      deliver(JSON.parse(e.data));
    } catch {
      /* a malformed event: the next one or the poll will do */
    }
  });
  es.addEventListener('end', () => {
    es.close();
    // the last `job` event already carried the final state; fetch once in case it was missed
    if (!last || !TERMINAL.has(last.status)) poll();
  });
  es.onerror = () => {
    if (stopped) return;
    failures += 1;
    if (es.readyState === EventSource.CLOSED || failures >= 3) {
      es.close();
      poll();
    }
  };
  return stop;
}
