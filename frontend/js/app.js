// The single-page shell: sign-in, navigation and a hash router (#/voices, #/voices/<id>,
// #/convert, #/conversions/<id>, #/jobs, #/models). Each view renders into <main> and returns a cleanup
// function that closes its live connections when the user leaves.

import { get, post, setUnauthorizedHandler } from './api.js';
import { alertBox, clear, h } from './ui.js';
import * as conversionView from './views/conversion.js';
import * as convertView from './views/convert.js';
import * as jobsView from './views/jobs.js';
import * as loginView from './views/login.js';
import * as modelsView from './views/models.js';
import * as voiceView from './views/voice.js';
import * as voicesView from './views/voices.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const session = document.getElementById('session');
let user = null;
let cleanup = null;
let renderSeq = 0;

const ROUTES = [
  [/^\/voices\/([\w-]+)$/, voiceView, 'voices'],
  [/^\/voices$/, voicesView, 'voices'],
  [/^\/convert$/, convertView, 'convert'],
  [/^\/conversions\/([\w-]+)$/, conversionView, 'convert'],
  [/^\/jobs$/, jobsView, 'jobs'],
  [/^\/models$/, modelsView, 'models'],
];

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/voices';
  const [path, query = ''] = raw.split('?');
  return { path, query: new URLSearchParams(query) };
}

export function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function setUser(u) {
  user = u;
  nav.hidden = !u;
  session.hidden = !u;
  document.getElementById('user-name').textContent = u ? u.name : '';
}

async function route() {
  const seq = ++renderSeq;
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a view's cleanup must not break navigation */
    }
    cleanup = null;
  }
  if (!user) {
    setUser(null);
    cleanup = loginView.render(main, { onLogin: (u) => { setUser(u); navigate(location.hash && location.hash !== '#/login' ? location.hash : '#/voices'); } });
    document.title = 'Sign in · svc-studio';
    return;
  }
  const { path, query } = parseHash();
  let view = null;
  let params = [];
  let section = '';
  for (const [re, v, s] of ROUTES) {
    const m = path.match(re);
    if (m) {
      view = v;
      params = m.slice(1);
      section = s;
      break;
    }
  }
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!view) {
    clear(main, h('h1', 'Page not found'), h('p', h('a', { href: '#/voices' }, 'Go to your voices')));
    return;
  }
  clear(main, h('p.muted', 'Loading…'));
  try {
    const fns = [];
    const ctx = { user, query, navigate, onCleanup: (fn) => fns.push(fn), isCurrent: () => seq === renderSeq };
    await view.render(main, params, ctx);
    if (seq !== renderSeq) return fns.forEach((f) => f());
    cleanup = () => fns.forEach((f) => f());
    const h1 = main.querySelector('h1');
    if (h1) document.title = `${h1.textContent} · svc-studio`;
    if (document.activeElement === document.body || !main.contains(document.activeElement)) main.focus({ preventScroll: true });
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e.status === 401) return; // handled by the unauthorized handler
    const missing = e.status === 404;
    clear(
      main,
      h('h1', missing ? 'Not found' : 'Something went wrong'),
      alertBox('error', missing ? 'This does not exist, or it is not yours.' : 'Could not load this page', e.message),
      h('p', h('a', { href: '#/voices' }, 'Go to your voices')),
    );
  }
}

setUnauthorizedHandler(() => {
  if (!user) return;
  setUser(null);
  route();
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await post('/auth/logout');
  } catch {
    /* signed out locally either way */
  }
  setUser(null);
  location.hash = '#/voices';
  route();
});

async function health() {
  const out = document.getElementById('health');
  try {
    const res = await fetch('/api/v1/health');
    const hl = await res.json();
    const workers = hl.workers.length;
    out.textContent =
      hl.status === 'ok'
        ? `ok, ${workers} worker${workers === 1 ? '' : 's'}`
        : `degraded (${hl.queues_without_workers.length ? `no worker for: ${hl.queues_without_workers.join(', ')}` : `database ${hl.database}, broker ${hl.broker}`})`;
  } catch {
    out.textContent = 'unreachable';
  }
}

async function boot() {
  try {
    setUser(await get('/me', { quiet401: true }));
  } catch {
    setUser(null);
  }
  window.addEventListener('hashchange', route);
  await route();
  health();
  setInterval(health, 30000);
}

boot();
