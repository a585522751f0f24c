/**
 * Helpers of the web client's end-to-end tests: the built app (web/build.ts), headless
 * Chromium (playwright-core + Debian's /usr/bin/chromium), and the few UI steps every
 * test repeats, written the way a user (or a screen reader) finds things: by role and
 * label.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { buildWeb } from '../../web/build.ts';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const screenshotDir = join(root, 'docs', 'screenshots');
/** WEB_SCREENSHOTS=1 refreshes docs/screenshots/*.png; other runs leave the tracked files alone. */
export const takeScreenshots = process.env.WEB_SCREENSHOTS === '1';

/** The server serves web/dist: build it before any platform starts. */
export function buildApp(): Promise<unknown> {
  return buildWeb();
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export interface AppPage {
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors and console errors: a test ends by expecting none. */
  errors: string[];
}

/** A new browser profile (its own localStorage and IndexedDB: a device) on the app. */
export async function openApp(browser: Browser, url: string, options: { phone?: boolean } = {}): Promise<AppPage> {
  const context = await browser.newContext(
    options.phone
      ? { viewport: { width: 390, height: 780 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'en-GB', timezoneId: 'UTC' }
      : { viewport: { width: 1100, height: 720 }, locale: 'en-GB', timezoneId: 'UTC' },
  );
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // A refused WebSocket while the server is down is expected in the restart test.
    if (message.type() === 'error' && !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(message.text())) errors.push(`console: ${message.text()}`);
  });
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(url);
  return { context, page, errors };
}

export const PASSWORD = 'correct-horse-battery';

/** Fills the login form and presses "Sign up" (or "Log in"); waits for the chat screen. */
export async function signIn(page: Page, user: string, mode: 'Sign up' | 'Log in' = 'Sign up'): Promise<void> {
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: mode, exact: true }).click();
  await page.getByRole('heading', { name: 'Conversations' }).waitFor();
  await page.locator('.connection', { hasText: /^Online$/ }).waitFor({ timeout: 15_000 });
}

export async function newChat(page: Page, user: string): Promise<void> {
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByRole('dialog').getByLabel('User name').fill(user);
  await page.getByRole('button', { name: 'Start chat' }).click();
  await title(page, user).waitFor();
}

export function composer(page: Page): Locator {
  return page.getByRole('textbox', { name: 'Message' });
}

export async function send(page: Page, text: string): Promise<void> {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

/** The conversation's button in the list (its accessible name starts with the title). */
export function conversation(page: Page, title: string): Locator {
  return page.locator('.conv-list li').filter({ has: page.locator('.conv-name', { hasText: new RegExp(`^${title}$`) }) }).getByRole('button');
}

export async function openConversation(page: Page, name: string): Promise<void> {
  await conversation(page, name).click();
  await title(page, name).waitFor();
}

/** The chat's title when it reads exactly `text`. */
export function title(page: Page, text: string): Locator {
  return page.locator('#chat-title', { hasText: new RegExp(`^${text}$`) });
}

/** The chat line holding `text`. */
export function message(page: Page, text: string | RegExp): Locator {
  return page.locator('ol.messages > li.msg').filter({ has: page.locator('p.text', { hasText: text }) });
}

/** Opens the actions menu of a message and picks an item. */
export async function messageAction(page: Page, text: string, item: string | RegExp): Promise<void> {
  const line = message(page, text);
  await line.hover();
  await line.getByRole('button', { name: /^Actions for message/ }).click();
  await line.getByRole('menuitem', { name: item }).click();
}

export async function screenshot(page: Page, name: string): Promise<void> {
  if (!takeScreenshots) return;
  await mkdir(screenshotDir, { recursive: true });
  // No blinking caret or half-finished animation in the pictures.
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.waitForTimeout(200);
  await page.screenshot({ path: join(screenshotDir, `${name}.png`) });
}
