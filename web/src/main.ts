/**
 * Entry point of the web client (bundled by web/build.ts into web/dist/app.js and served
 * by the platform at `/`). The page talks to the server it was loaded from: HTTP API at
 * the same origin, MQTT over WebSocket at `/mqtt`.
 *
 * Boot: a saved session resumes (the SDK refreshes an expired access token with the saved
 * refresh token); otherwise the login form. One tab per device runs the chat (TabLock).
 */
import { ChatClient, IndexedDbStore } from '@mqtt-chat/client';
import { ChatApp } from './app.ts';
import { renderAuth } from './auth-view.ts';
import { h, setChildren, byId } from './dom.ts';
import { Session, TabLock, clearSession } from './session.ts';

const origin = location.origin;
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/mqtt`;
const root = byId('app');

function storeName(session: Session): string {
  return `mqtt-chat:${session.user}:${session.device}`;
}

function deleteDatabase(name: string): Promise<void> {
  return new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = request.onerror = request.onblocked = () => resolve();
  });
}

function showAuth(message?: string): void {
  renderAuth(root, { origin, ...(message ? { message } : {}), onSignedIn: (session) => void startChat(session) });
}

function showElsewhere(lock: TabLock, session: Session): void {
  const use = h('button', { type: 'button', class: 'primary' }, 'Use here');
  use.addEventListener('click', () => {
    use.disabled = true;
    void lock.takeOver().then(() => startChat(session, lock));
  });
  setChildren(root, h('main', { class: 'auth' }, h('div', { class: 'auth-form' }, h('h1', null, 'Chat'), h('p', { role: 'status' }, 'Chat is open in another tab or window of this browser.'), h('div', { class: 'actions' }, use))));
  use.focus();
}

/** What runs in this tab now, if anything. */
let running: { app: ChatApp; store: IndexedDbStore } | undefined;

/** Another tab pressed "Use here": stop the client, hand over the lock. */
async function stepBack(lock: TabLock, session: Session): Promise<void> {
  const current = running;
  running = undefined;
  await current?.app.dispose();
  await current?.store.close().catch(() => undefined);
  lock.release();
  showElsewhere(lock, session);
}

async function startChat(session: Session, heldLock?: TabLock): Promise<void> {
  const lock: TabLock = heldLock ?? new TabLock(`mqtt-chat:${session.user}:${session.device}`, () => void stepBack(lock, session));
  if (!heldLock && !(await lock.tryAcquire())) {
    showElsewhere(lock, session);
    return;
  }
  const store = await IndexedDbStore.open(storeName(session));
  const client = new ChatClient({
    url: wsUrl,
    user: session.user,
    device: session.device,
    getToken: session.token,
    refreshToken: session.refresh,
    store,
    // Reconnect sooner than the SDK's default 30 s ceiling: a chat screen is watched by a person.
    backoff: { initialMs: 500, maxMs: 10_000 },
  });
  const leave = async (message: string, revoke: boolean) => {
    const current = running;
    running = undefined;
    await current?.app.dispose();
    // This device's local copy goes with its session.
    await store.clear().catch(() => undefined);
    await store.close().catch(() => undefined);
    await deleteDatabase(storeName(session));
    if (revoke) await session.signOut();
    else clearSession();
    lock.release();
    history.replaceState(null, '', location.pathname);
    showAuth(message);
  };
  const app = new ChatApp({
    root,
    session,
    client,
    store,
    onSignOut: () => void leave('You are logged out.', true),
    onSessionEnded: (message) => void leave(message, false),
  });
  running = { app, store };
  await app.start();
}

const resumed = Session.resume(origin);
if (resumed) void startChat(resumed);
else showAuth();
