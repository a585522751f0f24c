/**
 * Sign up / log in: one form, two submit buttons (POST /v1/auth/register or /login through
 * the SDK's HttpAuth). Errors are announced (role=alert) next to the form.
 */
import { AuthHttpError } from '@mqtt-chat/client';
import { h, setChildren } from './dom.ts';
import { Session } from './session.ts';

function authError(error: unknown, mode: 'login' | 'register'): string {
  if (error instanceof AuthHttpError) {
    if (error.status === 401) return 'Wrong user name or password.';
    if (error.status === 409) return 'That user name is taken. Pick another one, or log in.';
    if (error.status === 429) return 'Too many attempts. Wait a moment and try again.';
    if (error.status === 400) return error.message.charAt(0).toUpperCase() + error.message.slice(1) + '.';
    return `${mode === 'login' ? 'Login' : 'Sign-up'} failed: ${error.message}`;
  }
  return 'The server cannot be reached. Check your connection and try again.';
}

export function renderAuth(root: HTMLElement, options: { origin: string; message?: string; onSignedIn: (session: Session) => void }): void {
  const user = h('input', {
    id: 'auth-user',
    name: 'user',
    required: true,
    autocomplete: 'username',
    autocapitalize: 'none',
    spellcheck: 'false',
    pattern: '[A-Za-z0-9_\\-]{1,64}',
    maxlength: 64,
    'aria-describedby': 'auth-user-hint',
  });
  const password = h('input', { id: 'auth-password', name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'current-password', 'aria-describedby': 'auth-password-hint' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const note = h('p', { class: 'form-note', role: 'status' }, options.message ?? '');
  const login = h('button', { type: 'submit', class: 'primary', value: 'login' }, 'Log in');
  const register = h('button', { type: 'submit', value: 'register' }, 'Sign up');
  const form = h(
    'form',
    {
      class: 'auth-form',
      'aria-labelledby': 'auth-title',
      on: {
        submit: (event) => {
          event.preventDefault();
          const mode = ((event as SubmitEvent).submitter as HTMLButtonElement | null)?.value === 'register' ? 'register' : 'login';
          // A new account wants a new password: let password managers offer one.
          password.autocomplete = mode === 'register' ? 'new-password' : 'current-password';
          error.textContent = '';
          login.disabled = register.disabled = true;
          form.setAttribute('aria-busy', 'true');
          Session.signIn(options.origin, mode, user.value.trim(), password.value).then(
            (session) => options.onSignedIn(session),
            (err: unknown) => {
              error.textContent = authError(err, mode);
              login.disabled = register.disabled = false;
              form.removeAttribute('aria-busy');
              (mode === 'login' && err instanceof AuthHttpError && err.status === 401 ? password : user).focus();
            },
          );
        },
      },
    },
    h('h1', { id: 'auth-title' }, 'Chat'),
    h('p', { class: 'tagline' }, 'Messages over MQTT. Log in, or sign up with a new user name.'),
    note,
    h('label', { for: 'auth-user' }, 'User name'),
    user,
    h('span', { class: 'hint', id: 'auth-user-hint' }, 'Letters, digits, - and _ (up to 64).'),
    h('label', { for: 'auth-password' }, 'Password'),
    password,
    h('span', { class: 'hint', id: 'auth-password-hint' }, 'At least 8 characters.'),
    error,
    h('div', { class: 'actions' }, login, register),
  );
  setChildren(root, h('main', { class: 'auth' }, form));
  document.title = 'Chat';
  user.focus();
}
