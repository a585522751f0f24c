/**
 * Modal dialogs (<dialog>: focus stays inside, Escape closes, focus returns to the opener):
 * a new 1:1 chat, a new group or channel, and a group's info with members and roles.
 */
import type { GroupInfo, MemberRole } from '@mqtt-chat/client';
import { h, setChildren } from './dom.ts';
import { assignableRoles, canRemove, parseUserList, USER_ID } from './model.ts';

let dialogCount = 0;

/** Opens a modal dialog; resolves when it closes. `build` fills it and gets a close function. */
export function openDialog(title: string, build: (body: HTMLElement, close: () => void) => void, className = ''): HTMLDialogElement {
  const id = `dialog-title-${++dialogCount}`;
  const body = h('div', { class: 'dialog-body' });
  const dialog = h(
    'dialog',
    { class: `dialog ${className}`, 'aria-labelledby': id },
    h('header', { class: 'dialog-header' }, h('h2', { id }, title), h('button', { type: 'button', class: 'icon', 'aria-label': 'Close', on: { click: () => dialog.close() } }, '✕')),
    body,
  );
  const opener = document.activeElement as HTMLElement | null;
  dialog.addEventListener('close', () => {
    dialog.remove();
    opener?.focus?.();
  });
  build(body, () => dialog.close());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

function errorLine(): HTMLElement {
  return h('p', { class: 'form-error', role: 'alert' });
}

function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  const id = input.id || `field-${++dialogCount}`;
  input.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' }, h('label', { class: 'label', for: id }, label), input, hint ? h('span', { class: 'hint', id: hintId }, hint) : null);
}

export function newChatDialog(me: string, start: (user: string) => void): void {
  openDialog('New chat', (body, close) => {
    const input = h('input', { name: 'user', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9_\\-]{1,64}', spellcheck: 'false' });
    const error = errorLine();
    const form = h(
      'form',
      {
        on: {
          submit: (event) => {
            event.preventDefault();
            const user = input.value.trim().replace(/^@/, '');
            if (!USER_ID.test(user)) return void (error.textContent = 'A user name is 1-64 letters, digits, - or _.');
            close();
            start(user === me ? me : user);
          },
        },
      },
      field('User name', input, 'The person you want to write to.'),
      error,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start chat')),
    );
    body.append(form);
    input.focus();
  });
}

export function newGroupDialog(me: string, create: (name: string, members: string[], kind: 'group' | 'channel') => Promise<void>): void {
  openDialog('New group', (body, close) => {
    const name = h('input', { name: 'name', required: true, maxlength: 128, autocomplete: 'off' });
    const members = h('input', { name: 'members', autocomplete: 'off', spellcheck: 'false' });
    const kindGroup = h('input', { type: 'radio', name: 'kind', value: 'group', checked: true });
    const kindChannel = h('input', { type: 'radio', name: 'kind', value: 'channel' });
    const error = errorLine();
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Create');
    const form = h(
      'form',
      {
        on: {
          submit: (event) => {
            event.preventDefault();
            const parsed = parseUserList(members.value, me);
            if (parsed.invalid.length) return void (error.textContent = `Not a user name: ${parsed.invalid.join(', ')}`);
            if (!name.value.trim()) return void (error.textContent = 'Give the group a name.');
            submit.disabled = true;
            create(name.value.trim(), parsed.users, kindChannel.checked ? 'channel' : 'group').then(close, (err: unknown) => {
              submit.disabled = false;
              error.textContent = err instanceof Error ? err.message : String(err);
            });
          },
        },
      },
      field('Name', name),
      field('Members', members, 'User names, separated by commas or spaces.'),
      h(
        'fieldset',
        { class: 'kind' },
        h('legend', null, 'Kind'),
        h('label', null, kindGroup, ' Group: everyone can post'),
        h('label', null, kindChannel, ' Channel: only admins post, members read'),
      ),
      error,
      h('div', { class: 'actions' }, submit),
    );
    body.append(form);
    name.focus();
  });
}

export interface GroupActions {
  rename(name: string): Promise<void>;
  setAnnounceOnly(on: boolean): Promise<void>;
  add(users: string[]): Promise<void>;
  remove(user: string): Promise<void>;
  setRole(user: string, role: MemberRole): Promise<void>;
  leave(): Promise<void>;
}

/**
 * The group info dialog. Returns a function that re-renders it with fresh info (after a
 * change of ours or someone else's), or undefined when it is closed.
 */
export function groupInfoDialog(me: string, info: GroupInfo, actions: GroupActions, onClose: () => void): (info: GroupInfo) => void {
  let body!: HTMLElement;
  let current = info;
  const status = h('p', { class: 'form-error', role: 'alert' });
  const run = (work: () => Promise<void>, focusAfter?: () => HTMLElement | null) => {
    status.textContent = '';
    work().then(
      () => focusAfter?.()?.focus(),
      (err: unknown) => (status.textContent = err instanceof Error ? err.message : String(err)),
    );
  };

  const render = () => {
    const myRole = current.members.find((m) => m.user === me)?.role;
    const admin = myRole === 'owner' || myRole === 'admin';
    const kindLabel = current.kind === 'channel' ? 'Channel' : 'Group';
    const rename = h('input', { name: 'name', value: current.name, maxlength: 128, autocomplete: 'off' });
    const announce = h('input', { type: 'checkbox', name: 'announce_only', checked: current.announce_only || current.kind === 'channel', disabled: current.kind === 'channel' });
    const addInput = h('input', { name: 'add', autocomplete: 'off', spellcheck: 'false' });
    const members = [...current.members].sort((a, b) => rank(a.role) - rank(b.role) || a.user.localeCompare(b.user));
    setChildren(
      body,
      h('p', { class: 'group-summary' }, `${kindLabel} · ${current.members.length} member${current.members.length === 1 ? '' : 's'}${myRole ? ` · you are ${myRole === 'member' ? 'a member' : `an ${myRole}`}` : ''}`),
      admin
        ? h(
            'form',
            { class: 'inline', on: { submit: (e) => (e.preventDefault(), run(() => actions.rename(rename.value.trim()))) } },
            field('Name', rename),
            h('button', { type: 'submit' }, 'Rename'),
          )
        : null,
      admin
        ? h(
            'label',
            { class: 'check' },
            announce,
            h('span', null, current.kind === 'channel' ? ' Only admins post (always, in a channel)' : ' Only admins can post (announcements)'),
          )
        : current.announce_only || current.kind === 'channel'
          ? h('p', null, 'Only admins can post here.')
          : null,
      h('h3', { id: 'members-heading' }, 'Members'),
      h(
        'ul',
        { class: 'members', 'aria-labelledby': 'members-heading' },
        members.map((m) => {
          const roles = m.user === me ? [] : assignableRoles(myRole, m.role);
          return h(
            'li',
            { data: { user: m.user } },
            h('span', { class: 'member-name' }, m.user === me ? `${m.user} (you)` : m.user),
            roles.length
              ? h(
                  'select',
                  {
                    'aria-label': `Role of ${m.user}`,
                    on: { change: (e) => run(() => actions.setRole(m.user, (e.target as HTMLSelectElement).value as MemberRole)) },
                  },
                  roles.map((role) => h('option', { value: role, selected: role === m.role }, role)),
                )
              : h('span', { class: 'role' }, m.role),
            m.user !== me && canRemove(myRole, m.role)
              ? h('button', { type: 'button', class: 'danger small', 'aria-label': `Remove ${m.user}`, on: { click: () => run(() => actions.remove(m.user)) } }, 'Remove')
              : null,
          );
        }),
      ),
      admin
        ? h(
            'form',
            {
              class: 'inline',
              on: {
                submit: (e) => {
                  e.preventDefault();
                  const parsed = parseUserList(addInput.value, me);
                  if (parsed.invalid.length) return void (status.textContent = `Not a user name: ${parsed.invalid.join(', ')}`);
                  if (parsed.users.length) run(() => actions.add(parsed.users), () => body.querySelector<HTMLInputElement>('input[name=add]'));
                },
              },
            },
            field('Add members', addInput),
            h('button', { type: 'submit' }, 'Add'),
          )
        : null,
      status,
      myRole ? h('div', { class: 'actions' }, h('button', { type: 'button', class: 'danger', on: { click: () => run(() => actions.leave()) } }, `Leave ${kindLabel.toLowerCase()}`)) : null,
    );
    announce.addEventListener('change', () => run(() => actions.setAnnounceOnly(announce.checked)));
  };

  let open = true;
  const dialog = openDialog(
    `${current.name}`,
    (b) => {
      body = b;
      render();
    },
    'group-info',
  );
  dialog.addEventListener('close', () => {
    open = false;
    onClose();
  });
  return (next: GroupInfo) => {
    if (!open) return;
    const focused = document.activeElement;
    const focusKey = focused instanceof HTMLElement && body.contains(focused) ? (focused.getAttribute('aria-label') ?? focused.getAttribute('name')) : null;
    current = next;
    dialog.querySelector('h2')!.textContent = next.name;
    render();
    if (focusKey) {
      const again = [...body.querySelectorAll<HTMLElement>('[aria-label],[name]')].find((el) => (el.getAttribute('aria-label') ?? el.getAttribute('name')) === focusKey);
      (again ?? body.querySelector<HTMLElement>('button, input, select'))?.focus();
    }
  };
}

function rank(role: MemberRole): number {
  return role === 'owner' ? 0 : role === 'admin' ? 1 : 2;
}
