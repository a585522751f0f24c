/**
 * The web client end to end: the real platform in-process (serving web/dist at `/`), the
 * app built from web/, and headless Chromium with one browser context per user (its own
 * localStorage and IndexedDB, i.e. its own device). The tests run in order and share users.
 */
import sharp from 'sharp';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';
import { ChatClient, HttpAuth } from '../../client-lib/src/index.ts';
import {
  buildApp,
  composer,
  conversation,
  launchBrowser,
  message,
  messageAction,
  newChat,
  openApp,
  openConversation,
  screenshot,
  send,
  signIn,
  title,
  type AppPage,
} from './helpers.ts';

let platform: TestPlatform;
let browser: Browser;
const pages: AppPage[] = [];
let alice: AppPage;
let bob: AppPage;
let carol: AppPage;

beforeAll(async () => {
  await buildApp();
  [platform, browser] = await Promise.all([startPlatform(), launchBrowser()]);
});

afterAll(async () => {
  for (const p of pages) await p.context.close().catch(() => undefined);
  await browser?.close();
  await platform?.close();
});

async function open(options: { phone?: boolean } = {}): Promise<AppPage> {
  const app = await openApp(browser, platform.httpUrl, options);
  pages.push(app);
  return app;
}

describe('web client', () => {
  it('serves the app at / with a Content-Security-Policy, next to the API', async () => {
    const response = await fetch(`${platform.httpUrl}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await response.text()).toContain('<script type="module" src="app.js">');
    // (Bodies are read to the end: an unread response keeps its connection busy, and the
    // server's close waits for busy connections.)
    const script = await fetch(`${platform.httpUrl}/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    const health = await fetch(`${platform.httpUrl}/healthz`);
    expect(health.status).toBe(200);
    await health.arrayBuffer();
    const missing = await fetch(`${platform.httpUrl}/no-such-file.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } });
  });

  it('two users sign up and chat: ticks turn to read, typing and presence show', async () => {
    alice = await open();
    bob = await open();
    await alice.page.getByLabel('User name').waitFor();
    await screenshot(alice.page, 'login');
    await Promise.all([signIn(alice.page, 'alice'), signIn(bob.page, 'bob')]);

    // A wrong password is refused with a message (and the session stays on the form).
    const stranger = await open();
    await stranger.page.getByLabel('User name').fill('alice');
    await stranger.page.getByLabel('Password', { exact: true }).fill('not-the-password');
    await stranger.page.getByRole('button', { name: 'Log in', exact: true }).click();
    await stranger.page.getByRole('alert').filter({ hasText: 'Wrong user name or password.' }).waitFor();
    await stranger.context.close();

    await newChat(alice.page, 'bob');
    await send(alice.page, 'Hello Bob!');
    // Stored (✓), then on Bob's device (✓✓): Bob is online, his client sends "delivered".
    await message(alice.page, 'Hello Bob!').and(alice.page.locator('[data-status="delivered"]')).waitFor();

    // Bob: the conversation appears with an unread count and the last message.
    const bobsEntry = conversation(bob.page, 'alice');
    await bobsEntry.filter({ hasText: 'Hello Bob!' }).waitFor();
    expect(await bobsEntry.getAttribute('aria-label')).toMatch(/1 unread/);
    expect(await bobsEntry.locator('.unread').textContent()).toBe('1');
    // The new message was announced in the ARIA live region.
    expect(await bob.page.locator('[role=log][aria-live=polite]').textContent()).toContain('alice: Hello Bob!');

    // Alice sees Bob online (retained presence), in the header and in the list.
    await alice.page.locator('#chat-subtitle', { hasText: /^online$/ }).waitFor();

    // Bob opens the chat: read receipt, Alice's ticks turn read.
    await openConversation(bob.page, 'alice');
    await message(alice.page, 'Hello Bob!').and(alice.page.locator('[data-status="read"]')).waitFor();
    expect(await message(alice.page, 'Hello Bob!').getByRole('img').getAttribute('aria-label')).toBe('Read');
    expect(await conversation(bob.page, 'alice').locator('.unread').count()).toBe(0);

    // Typing: Bob types, Alice sees it; Bob sends, the indicator goes.
    await composer(bob.page).pressSequentially('Hi Al', { delay: 20 });
    await alice.page.locator('.typing', { hasText: 'bob is typing…' }).waitFor();
    await composer(bob.page).pressSequentially('ice', { delay: 20 });
    await composer(bob.page).press('Enter');
    await message(alice.page, 'Hi Alice').waitFor();
    await alice.page.locator('.typing', { hasText: /^$/ }).waitFor();
    await message(bob.page, 'Hi Alice').and(bob.page.locator('[data-status="read"]')).waitFor();
    await screenshot(alice.page, 'chat');

    // Presence: Bob logs out; Alice sees "last seen".
    await bob.page.getByRole('button', { name: 'Log out' }).click();
    await bob.page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
    await alice.page.locator('#chat-subtitle', { hasText: /^last seen today at \d\d:\d\d$/ }).waitFor();
    // ... and back: logging in again (a new device) shows the history from the server.
    await signIn(bob.page, 'bob', 'Log in');
    await alice.page.locator('#chat-subtitle', { hasText: /^online$/ }).waitFor();
    await openConversation(bob.page, 'alice');
    await message(bob.page, 'Hello Bob!').waitFor();
    await message(bob.page, 'Hi Alice').waitFor();

    expect([...alice.errors, ...bob.errors]).toEqual([]);
  });

  it('a group of three: replies, reactions, edits, deletes, roles, announce-only, members removed and added', async () => {
    carol = await open();
    await signIn(carol.page, 'carol');

    await alice.page.getByRole('button', { name: 'New group' }).click();
    const dialog = alice.page.getByRole('dialog', { name: 'New group' });
    await dialog.getByLabel('Name', { exact: true }).fill('Team');
    await dialog.getByLabel('Members', { exact: true }).fill('bob, carol');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await title(alice.page, 'Team').waitFor();
    await alice.page.locator('#chat-subtitle', { hasText: 'Group · 3 members' }).waitFor();

    // Bob and Carol see the group appear (the "created" event), and open it.
    await openConversation(bob.page, 'Team');
    await openConversation(carol.page, 'Team');
    await carol.page.locator('li.event', { hasText: 'Alice created the group “Team”' }).waitFor();

    await send(alice.page, 'Hello team');
    await message(bob.page, 'Hello team').waitFor();
    await message(carol.page, 'Hello team').waitFor();
    // Read by both (their chats are open): blue ticks.
    await message(alice.page, 'Hello team').and(alice.page.locator('[data-status="read"]')).waitFor();

    // Bob replies to it, Carol reacts.
    await messageAction(bob.page, 'Hello team', 'Reply');
    await bob.page.locator('.context', { hasText: 'Replying to alice: Hello team' }).waitFor();
    await send(bob.page, 'Reply from bob');
    await message(alice.page, 'Reply from bob').locator('.quote', { hasText: 'You: Hello team' }).waitFor();
    await messageAction(carol.page, 'Hello team', 'React 👍');
    await message(alice.page, 'Hello team').getByRole('button', { name: '👍 1: carol' }).waitFor();

    // Alice edits her message; then sends one more and deletes it.
    await messageAction(alice.page, 'Hello team', 'Edit');
    await composer(alice.page).fill('Hello team, welcome!');
    await composer(alice.page).press('Enter');
    await message(bob.page, 'Hello team, welcome!').locator('.edited').waitFor();
    await message(bob.page, 'Hello team, welcome!').getByRole('button', { name: '👍 1: carol' }).waitFor();
    await send(alice.page, 'Oops, wrong chat');
    await message(carol.page, 'Oops, wrong chat').waitFor();
    await messageAction(alice.page, 'Oops, wrong chat', 'Delete for everyone');
    await carol.page.locator('li.msg.deleted', { hasText: 'This message was deleted' }).waitFor();
    expect(await message(carol.page, 'Oops, wrong chat').count()).toBe(0);

    // Group info: roles.
    await alice.page.getByRole('button', { name: 'Group info' }).click();
    const info = alice.page.getByRole('dialog', { name: 'Team' });
    await info.getByRole('list', { name: 'Members' }).getByRole('listitem').nth(2).waitFor();
    await info.getByRole('combobox', { name: 'Role of bob' }).selectOption('admin');
    await carol.page.locator('li.event', { hasText: 'Alice made bob an admin' }).waitFor();
    await screenshot(alice.page, 'group-info');

    // Announce-only: Carol (a member) may no longer post, Bob (an admin) may.
    await info.getByRole('checkbox', { name: /Only admins can post/ }).check();
    await carol.page.locator('#composer-notice', { hasText: 'Only admins can post in this group.' }).waitFor();
    expect(await composer(carol.page).isDisabled()).toBe(true);
    await send(bob.page, 'Admins only from now on');
    await message(carol.page, 'Admins only from now on').waitFor();

    // Remove Carol, then add her back.
    await info.getByRole('button', { name: 'Remove carol' }).click();
    await carol.page.locator('#chat-subtitle', { hasText: 'You are no longer a member' }).waitFor();
    await carol.page.locator('li.event', { hasText: 'Alice removed you' }).waitFor();
    await info.getByLabel('Add members').fill('carol');
    await info.getByRole('button', { name: 'Add', exact: true }).click();
    await info.getByRole('list', { name: 'Members' }).getByRole('listitem').filter({ hasText: 'carol' }).waitFor();
    await carol.page.locator('#composer-notice', { hasText: 'Only admins can post in this group.' }).waitFor();
    await info.getByRole('button', { name: 'Close' }).click();

    // A channel: only admins post, members read.
    await alice.page.getByRole('button', { name: 'New group' }).click();
    const channelDialog = alice.page.getByRole('dialog', { name: 'New group' });
    await channelDialog.getByLabel('Name', { exact: true }).fill('News');
    await channelDialog.getByLabel('Members', { exact: true }).fill('carol');
    await channelDialog.getByRole('radio', { name: /Channel/ }).check();
    await channelDialog.getByRole('button', { name: 'Create' }).click();
    await title(alice.page, 'News').waitFor();
    await send(alice.page, 'First announcement');
    await conversation(carol.page, 'News').filter({ hasText: 'alice: First announcement' }).waitFor();
    await openConversation(carol.page, 'News');
    await carol.page.locator('#composer-notice', { hasText: 'Only admins can post in this channel.' }).waitFor();
    await openConversation(carol.page, 'Team');

    expect([...alice.errors, ...bob.errors, ...carol.errors]).toEqual([]);
  });

  it('an image upload shows progress and is shown to the other side', async () => {
    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 30, b: 60 } } }).png().toBuffer();
    await openConversation(alice.page, 'bob');
    await openConversation(bob.page, 'alice');
    // Record every upload progress value the page shows.
    await alice.page.evaluate(() => {
      const seen: number[] = ((window as unknown as { progressSeen: number[] }).progressSeen = []);
      new MutationObserver(() => {
        document.querySelectorAll<HTMLProgressElement>('.uploads progress').forEach((p) => seen.push(Number(p.value)));
      }).observe(document.querySelector('.uploads')!, { childList: true, subtree: true, attributes: true });
    });
    await composer(alice.page).fill('A red square');
    await alice.page.locator('#attach-input').setInputFiles({ name: 'red.png', mimeType: 'image/png', buffer: png });

    // The sender sees it at once (local file), the receiver after downloading it.
    const mine = alice.page.locator('li.msg.own').filter({ hasText: 'A red square' });
    await mine.locator('img[data-full]').waitFor();
    const theirs = bob.page.locator('li.msg.theirs').filter({ hasText: 'A red square' });
    const image = theirs.getByRole('img', { name: 'Photo from alice' });
    await image.waitFor();
    await expect.poll(() => image.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(64);
    expect(await image.getAttribute('src')).toMatch(/^blob:/);
    const progress = await alice.page.evaluate(() => (window as unknown as { progressSeen: number[] }).progressSeen);
    expect(progress.length).toBeGreaterThan(0);
    await mine.and(alice.page.locator('[data-status="read"]')).waitFor();
    expect([...alice.errors, ...bob.errors]).toEqual([]);
  });

  it('loads older messages on scroll, from IndexedDB and then from the server', async () => {
    // Dave writes 230 messages from Node (the SDK over TCP); a new device syncs the newest 200.
    const daveAuth = await HttpAuth.register(platform.httpUrl, 'dave', 'correct-horse-battery', 'node');
    const dave = new ChatClient({ url: platform.mqttUrl, user: 'dave', device: 'node', getToken: daveAuth.getToken, refreshToken: daveAuth.refreshToken });
    try {
      await dave.connect();
      const first = await dave.send({ to: 'alice' }, { text: 'dave 1' });
      const sends: Promise<unknown>[] = [];
      for (let i = 2; i <= 230; i++) sends.push(dave.send({ conv: first.conv }, { text: `dave ${i}` }));
      await Promise.all(sends);
    } finally {
      await dave.close();
    }
    await conversation(alice.page, 'dave').filter({ hasText: 'dave 230' }).waitFor({ timeout: 20_000 });
    await conversation(alice.page, 'dave').locator('.unread', { hasText: '230' }).waitFor();
    await screenshot(alice.page, 'conversations');
    await openConversation(alice.page, 'dave');
    await message(alice.page, /^dave 230$/).waitFor();
    const scroller = alice.page.locator('.scroller');
    const count = () => alice.page.locator('ol.messages > li.msg').count();
    expect(await count()).toBeLessThanOrEqual(60);
    // Scroll up until the first message is there.
    for (let i = 0; i < 20 && (await message(alice.page, /^dave 1$/).count()) === 0; i++) {
      await scroller.evaluate((el) => (el.scrollTop = 0));
      await alice.page.waitForTimeout(250);
    }
    await message(alice.page, /^dave 1$/).waitFor();
    expect(await count()).toBe(230);
    // In order, each once.
    const texts = await alice.page.locator('ol.messages > li.msg p.text').allTextContents();
    expect(texts).toEqual(Array.from({ length: 230 }, (_, i) => `dave ${i + 1}`));
    expect(alice.errors).toEqual([]);
  });

  it('keyboard: arrows move through conversations and messages, Enter opens a message’s actions, Escape closes them', async () => {
    const page = alice.page;
    const focused = () => page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return { label: el?.getAttribute('aria-label') ?? '', text: el?.textContent ?? '', role: el?.getAttribute('role') ?? el?.tagName.toLowerCase() ?? '' };
    });
    await conversation(page, 'News').focus();
    await page.keyboard.press('ArrowDown');
    expect((await focused()).label).toMatch(/^Team, group/);
    await page.keyboard.press('Enter');
    await title(page, 'Team').waitFor();

    // The newest line is the Tab stop of the list; Up walks back to Bob's message.
    await page.locator('ol.messages > li[tabindex="0"]').focus();
    expect((await focused()).text).toBe('You added carol');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    expect((await focused()).text).toContain('Admins only from now on');
    await page.keyboard.press('Enter');
    expect(await focused()).toMatchObject({ role: 'menuitem', text: 'Reply' });
    await page.keyboard.press('ArrowDown');
    expect(await focused()).toMatchObject({ role: 'menuitem', label: 'React 👍' });
    await page.keyboard.press('Escape');
    expect((await focused()).label).toBe('Actions for message from bob');
    expect(await page.getByRole('menu').count()).toBe(0);
    // Reply from the keyboard: Enter on the menu item, type, Enter sends.
    await page.keyboard.press('Enter');
    await page.keyboard.press('Enter');
    await page.keyboard.type('Got it');
    await page.keyboard.press('Enter');
    await message(alice.page, 'Got it').locator('.quote', { hasText: 'bob: Admins only from now on' }).waitFor();
    await message(carol.page, 'Got it').locator('.quote', { hasText: 'bob: Admins only from now on' }).waitFor();
    expect(alice.errors).toEqual([]);
  });

  it('a reload resumes the saved session; a refused access token is refreshed with the refresh token', async () => {
    const page = bob.page;
    const read = () => page.evaluate(() => JSON.parse(localStorage.getItem('mqtt-chat.session') ?? '{}') as { user: string; device: string; token: string; refresh_token: string });
    const before = await read();
    await page.evaluate(() => {
      const session = JSON.parse(localStorage.getItem('mqtt-chat.session')!) as { token: string };
      session.token = 'not.a-valid.token';
      localStorage.setItem('mqtt-chat.session', JSON.stringify(session));
    });
    await page.reload();
    await page.locator('.connection', { hasText: /^Online$/ }).waitFor({ timeout: 20_000 });
    const after = await read();
    expect(after).toMatchObject({ user: 'bob', device: before.device });
    expect(after.token).not.toBe('not.a-valid.token');
    expect(after.refresh_token).not.toBe(before.refresh_token);
    await conversation(page, 'Team').waitFor();

    // A second tab of the same browser waits: one MQTT connection per device. "Use here" moves it.
    const second = await bob.context.newPage();
    await second.goto(platform.httpUrl);
    await second.getByText('Chat is open in another tab or window of this browser.').waitFor();
    await second.getByRole('button', { name: 'Use here' }).click();
    await second.locator('.connection', { hasText: /^Online$/ }).waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Use here' }).click();
    await page.locator('.connection', { hasText: /^Online$/ }).waitFor({ timeout: 20_000 });
    await second.getByRole('button', { name: 'Use here' }).waitFor();
    await second.close();
    expect(bob.errors).toEqual([]);
  });

  it('works on a phone-sized screen: one pane at a time, back to the list', async () => {
    const phone = await open({ phone: true });
    await signIn(phone.page, 'carol', 'Log in');
    const list = phone.page.getByRole('navigation', { name: 'Conversations' });
    const chat = phone.page.getByRole('main');
    await conversation(phone.page, 'Team').filter({ hasText: 'alice: Got it' }).waitFor();
    await conversation(phone.page, 'News').waitFor();
    expect(await list.isVisible()).toBe(true);
    expect(await chat.isVisible()).toBe(false);
    await screenshot(phone.page, 'phone-list');

    await openConversation(phone.page, 'Team');
    expect(await list.isVisible()).toBe(false);
    await message(phone.page, 'Admins only from now on').waitFor();
    // No horizontal scrolling on a 390 px screen.
    expect(await phone.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(phone.page, 'phone-chat');

    await phone.page.getByRole('button', { name: 'Back to conversations' }).click();
    await list.waitFor();
    expect(await chat.isVisible()).toBe(false);
    // The browser's back button works too (the open chat is in the URL hash).
    await openConversation(phone.page, 'Team');
    await phone.page.goBack();
    await list.waitFor();
    expect(phone.errors).toEqual([]);
  });
});
