/**
 * The web client across a server crash: the platform runs as a child process (npm start's
 * broker/main.ts, serving web/dist), is killed with SIGKILL while a message waits in the
 * browser's outbox (IndexedDB), and restarts on the same ports and data directory. The
 * offline banner lists the message; after the restart it is sent, and it arrives once.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnPlatform, type ChildPlatform } from '../helpers/platform.ts';
import { buildApp, launchBrowser, message, newChat, openApp, openConversation, screenshot, send, signIn, type AppPage } from './helpers.ts';

let child: ChildPlatform;
let browser: Browser;
const pages: AppPage[] = [];

/**
 * spawnPlatform picks free ports and the child binds them a moment later; a test file
 * running in parallel can take one in between (EADDRINUSE). Then: other ports, again.
 */
async function spawnWithRetry(attempts = 3): Promise<ChildPlatform> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnPlatform();
    } catch (error) {
      if (attempt >= attempts || !String(error).includes('EADDRINUSE')) throw error;
    }
  }
}

beforeAll(async () => {
  await buildApp();
  [child, browser] = await Promise.all([spawnWithRetry(), launchBrowser()]);
});

afterAll(async () => {
  for (const p of pages) await p.context.close().catch(() => undefined);
  await browser?.close();
  await child?.dispose();
});

it('a message written while the server is down waits in the outbox and arrives once after the restart', async () => {
  const alice = await openApp(browser, child.httpUrl);
  const bob = await openApp(browser, child.httpUrl);
  pages.push(alice, bob);
  await Promise.all([signIn(alice.page, 'alice'), signIn(bob.page, 'bob')]);
  await newChat(alice.page, 'bob');
  await send(alice.page, 'before the crash');
  await openConversation(bob.page, 'alice');
  await message(bob.page, 'before the crash').waitFor();

  await child.kill('SIGKILL');
  const banner = alice.page.getByRole('region', { name: 'Connection' });
  await banner.getByText('You are offline.').waitFor();
  await alice.page.locator('.connection', { hasText: /^Offline$/ }).waitFor();

  // Written offline: shown as waiting (🕓) in the chat and listed in the banner.
  await send(alice.page, 'written while the server was down');
  await alice.page.locator('li.msg.pending[data-status="pending"]', { hasText: 'written while the server was down' }).waitFor();
  await banner.getByText('1 message waiting to be sent.').waitFor();
  await banner.getByRole('list', { name: 'Waiting to be sent' }).getByText('To bob: written while the server was down').waitFor();
  expect(await alice.page.locator('li.msg.pending').getByRole('img').getAttribute('aria-label')).toBe('Waiting to send');
  await screenshot(alice.page, 'offline');

  await child.restart();
  // The app reconnects by itself (backoff up to 10 s); "Retry now" skips the wait.
  await banner.getByRole('button', { name: 'Retry now' }).click().catch(() => undefined);
  await alice.page.locator('.connection', { hasText: /^Online$/ }).waitFor({ timeout: 20_000 });
  await banner.waitFor({ state: 'hidden' });
  const sent = message(alice.page, 'written while the server was down');
  await sent.and(alice.page.locator(':not(.pending)')).waitFor({ timeout: 20_000 });
  await message(bob.page, 'written while the server was down').waitFor({ timeout: 20_000 });
  await sent.and(alice.page.locator('[data-status="read"]')).waitFor({ timeout: 20_000 });

  // Once: on both screens, and again after Bob reloads (IndexedDB + sync with the server).
  expect(await message(bob.page, 'written while the server was down').count()).toBe(1);
  expect(await message(alice.page, 'written while the server was down').count()).toBe(1);
  await bob.page.reload();
  await bob.page.locator('.connection', { hasText: /^Online$/ }).waitFor({ timeout: 20_000 });
  await message(bob.page, 'written while the server was down').waitFor();
  const texts = await bob.page.locator('ol.messages > li.msg p.text').allTextContents();
  expect(texts).toEqual(['before the crash', 'written while the server was down']);
  expect([...alice.errors, ...bob.errors]).toEqual([]);
});
