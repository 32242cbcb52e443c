// Sign in with the access token the server printed (`svc-studio serve`, or
// `svc-studio users create NAME` / `users token NAME`). The API answers with an HttpOnly cookie.

import { post } from '../api.js';
import { alertBox, clear, h } from '../ui.js';

export function render(main, { onLogin }) {
  const input = h('input', {
    type: 'password',
    id: 'token',
    name: 'token',
    autocomplete: 'current-password',
    required: true,
    spellcheck: 'false',
    placeholder: 'svc_…',
  });
  const errors = h('div', { id: 'login-errors' });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form.panel.login.stack',
    { 'aria-labelledby': 'login-title', novalidate: true },
    h('h1', { id: 'login-title' }, 'Sign in to svc-studio'),
    h(
      'p.muted',
      'Paste the access token that ',
      h('code', 'svc-studio serve'),
      ' printed when it started (an admin can make one with ',
      h('code', 'svc-studio users create NAME'),
      ').',
    ),
    h('div.field', h('label', { for: 'token' }, 'Access token'), input),
    errors,
    button,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    clear(errors);
    if (!token) {
      errors.append(alertBox('error', 'Enter your access token.'));
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      const user = await post('/auth/login', { token }, { quiet401: true });
      onLogin(user);
    } catch (err) {
      const msg = err.status === 401 || err.status === 422 ? 'That token is not valid. Check it and try again.' : err.message;
      errors.append(alertBox('error', 'Could not sign in', msg));
      input.select();
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  clear(main, form);
  input.focus();
  return () => {};
}
