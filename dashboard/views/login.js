// @ts-check
/**
 * Sign in with an admin key (an instance key, or an app key for one app). The key is checked
 * with `GET /admin/apps` and kept in sessionStorage for this tab only.
 * @module views/login
 */
import { api, ApiError, session } from '../api.js';
import { describeError, h, icon } from '../ui.js';

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @param {() => void} done called once signed in
 * @returns {HTMLElement} what to focus
 */
export function render(root, context, done) {
  const input = /** @type {HTMLInputElement} */ (h('input', {
    id: 'login-key', name: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
    'aria-describedby': 'login-help login-error', placeholder: 'pc_…',
  }));
  const error = h('div', { id: 'login-error', class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'button primary wide', id: 'login-submit', text: 'Sign in' });
  const heading = h('h1', { tabindex: '-1', text: 'Sign in to PiCloud' });

  const form = h('form', { class: 'panel login-panel', novalidate: true },
    heading,
    h('p', { class: 'muted', text: 'Use an admin key: the instance key (PICLOUD_ADMIN_TOKEN, or DATA/admin-token), or an app key.' }),
    h('div', { class: 'field' },
      h('label', { for: 'login-key', text: 'Admin key' }),
      input,
      h('p', { id: 'login-help', class: 'hint', text: 'Kept in this browser tab only, until you sign out or close it.' })),
    error,
    submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    error.replaceChildren();
    input.removeAttribute('aria-invalid');
    if (!key) {
      showError('Enter a key.');
      return;
    }
    submit.setAttribute('disabled', '');
    submit.textContent = 'Checking…';
    try {
      await api.get('/admin/apps', { key, signal: context.signal });
      session.set(key);
      done();
    } catch (failure) {
      if (context.signal.aborted) return;
      if (failure instanceof ApiError && failure.status === 401) showError(`That key was not accepted: ${failure.message}.`);
      else {
        const { title, detail } = describeError(failure);
        showError(`${title}. ${detail}`);
      }
    } finally {
      submit.removeAttribute('disabled');
      submit.textContent = 'Sign in';
    }
  });

  /** @param {string} message */
  function showError(message) {
    input.setAttribute('aria-invalid', 'true');
    error.replaceChildren(icon('alert'), h('span', { text: message }));
    input.focus();
  }

  root.replaceChildren(h('div', { class: 'login' }, form));
  if (session.key === null) input.focus();
  return input;
}
