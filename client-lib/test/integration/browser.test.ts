/**
 * The browser bundle (dist/browser.js, MQTT.js inside) in headless Chromium: it connects
 * over WebSocket to the real server, exchanges messages with a Node client over TCP,
 * persists them in IndexedDB (which passes the LocalStore contract suite in the page), and
 * finds them again after a page reload.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ChatClient } from '../../src/client.ts';
import { makeClient, observe } from '../helpers/chat-user.ts';
import { loadPlatform, uniqueUser, waitFor, type PlatformHelpers, type Registration, type TestPlatform } from '../helpers/platform.ts';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let helpers: PlatformHelpers;
let platform: TestPlatform;
let browser: Browser;
let server: Server;
let pageUrl: string;
const clients: ChatClient[] = [];

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>client-lib</title></head><body>
<script type="module">
  import * as sdk from '/browser.js';
  import { runIndexedDbContract } from '/contract.js';
  window.sdk = sdk;
  window.runIndexedDbContract = runIndexedDbContract;
  window.ready = true;
</script></body></html>`;

beforeAll(async () => {
  helpers = await loadPlatform();
  const platformStarted = helpers.startPlatform();
  // The real artifact: the package's own build script.
  execFileSync('npm', ['run', 'build:browser'], { cwd: packageDir, stdio: 'pipe' });
  const bundle = readFileSync(join(packageDir, 'dist', 'browser.js'));
  const contract = await build({
    entryPoints: [join(packageDir, 'test', 'integration', 'browser-contract-entry.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
  });
  const files: Record<string, { type: string; body: Buffer | string }> = {
    '/': { type: 'text/html', body: PAGE },
    '/browser.js': { type: 'text/javascript', body: bundle },
    '/contract.js': { type: 'text/javascript', body: Buffer.from(contract.outputFiles[0]!.contents) },
  };
  server = createServer((request, response) => {
    const file = files[request.url ?? '/'];
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file.type }).end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  pageUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  platform = await platformStarted;
});

afterAll(async () => {
  for (const client of clients) await client.close().catch(() => undefined);
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await platform?.close();
});

async function openPage(): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(pageUrl);
  await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
  return page;
}

interface PageArgs {
  wsUrl: string;
  registration: Registration;
  peer: string;
}

/** Starts a ChatClient with an IndexedDB store inside the page; its events go to window.seen. */
async function startPageClient(page: Page, args: PageArgs): Promise<void> {
  await page.evaluate(async ({ wsUrl, registration }) => {
    type Sdk = typeof import('../../src/browser-bundle.ts');
    const w = window as unknown as { sdk: Sdk; client: ChatClient; store: import('../../src/store/indexeddb.ts').IndexedDbStore; seen: unknown[]; errors: string[] };
    w.store = await w.sdk.IndexedDbStore.open(`chat-${registration.user}`);
    w.client = new w.sdk.ChatClient({
      url: wsUrl,
      user: registration.user,
      device: registration.device,
      getToken: () => registration.token,
      store: w.store,
      backoff: { initialMs: 100, maxMs: 1000 },
    });
    w.seen = [];
    w.errors = [];
    w.client.on('message', (message) => w.seen.push(message));
    w.client.on('error', (error) => w.errors.push(`${error.code}: ${error.message}`));
    await w.client.connect();
  }, args);
}

it('IndexedDbStore passes the LocalStore contract suite in Chromium', async () => {
  const page = await openPage();
  try {
    const results = await page.evaluate(() =>
      (window as unknown as { runIndexedDbContract: () => Promise<{ name: string; ok: boolean; skipped?: boolean; error?: string }[]> }).runIndexedDbContract(),
    );
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.filter((r) => r.skipped)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(10);
  } finally {
    await page.close();
  }
});

it('the browser bundle chats over WebSocket with a Node client and keeps the chat in IndexedDB across a reload', async () => {
  const [webUser, nodeUser] = await Promise.all([
    helpers.registerUser(platform.httpUrl, uniqueUser('web'), 'correct-horse-battery', 'browser'),
    helpers.registerUser(platform.httpUrl, uniqueUser('node')),
  ]);
  const nodeClient = makeClient(platform.mqttUrl, platform.httpUrl, nodeUser);
  clients.push(nodeClient);
  const nodeSaw = observe(nodeClient);
  await nodeClient.connect();

  const page = await openPage();
  const args: PageArgs = { wsUrl: platform.wsUrl, registration: webUser, peer: nodeUser.user };
  await startPageClient(page, args);
  expect(await page.evaluate(() => (window as unknown as { client: { state: string } }).client.state)).toBe('online');

  // Browser -> Node.
  const ack = await page.evaluate(
    ({ peer }) => (window as unknown as { client: ChatClient }).client.send({ to: peer }, { text: 'hello from Chromium' }),
    args,
  );
  expect(ack).toMatchObject({ conv: expect.any(String), seq: expect.any(Number) });
  await waitFor(() => nodeSaw.messages.some((m) => m.seq === ack.seq && m.conv === ack.conv), 'node receives the browser message');
  expect(nodeSaw.messages.find((m) => m.seq === ack.seq)).toMatchObject({ from: webUser.user, body: { text: 'hello from Chromium' } });

  // Node -> browser.
  const reply = await nodeClient.send({ conv: ack.conv }, { text: 'hello from Node' });
  await page.waitForFunction(
    (seq) => (window as unknown as { seen: { seq: number }[] }).seen.some((m) => m.seq === seq),
    reply.seq,
    { timeout: 15_000 },
  );

  // Both are in IndexedDB, searchable; then the page reloads (an app restart) and a message
  // queued before connecting goes out from the IndexedDB outbox.
  const stored = await page.evaluate(async (conv) => {
    const w = window as unknown as { store: { listMessages(c: string): Promise<{ body: { text?: string } }[]>; searchMessages(q: string): Promise<{ body: { text?: string } }[]> }; client: ChatClient; errors: string[] };
    const texts = (await w.store.listMessages(conv)).map((m) => m.body.text);
    const found = (await w.store.searchMessages('chromium')).map((m) => m.body.text);
    await w.client.close();
    await (w.store as unknown as { close(): Promise<void> }).close();
    return { texts, found, errors: w.errors };
  }, ack.conv);
  expect(stored.texts).toEqual(['hello from Chromium', 'hello from Node']);
  expect(stored.found).toEqual(['hello from Chromium']);
  expect(stored.errors).toEqual([]);

  await page.reload();
  await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
  const afterReload = await page.evaluate(async ({ wsUrl, registration, conv }) => {
    type Sdk = typeof import('../../src/browser-bundle.ts');
    const w = window as unknown as { sdk: Sdk };
    const store = await w.sdk.IndexedDbStore.open(`chat-${registration.user}`);
    const kept = (await store.listMessages(conv)).map((m) => m.body.text);
    const client = new w.sdk.ChatClient({ url: wsUrl, user: registration.user, device: registration.device, getToken: () => registration.token, store });
    const queued = client.send({ conv }, { text: 'queued before connect' }, { id: 'web-queued-1' });
    const pendingBefore = client.pendingSends().length;
    await client.connect();
    const queuedAck = await queued;
    // The echo of the queued message follows its ack: wait for it to be stored.
    for (let i = 0; i < 200 && (client.conversationState(conv)?.synced_seq ?? 0) < queuedAck.seq; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const synced = client.conversationState(conv);
    await client.close();
    await store.close();
    return { kept, queuedAck, pendingBefore, synced };
  }, { ...args, conv: ack.conv });
  expect(afterReload.kept).toEqual(['hello from Chromium', 'hello from Node']);
  expect(afterReload.queuedAck).toMatchObject({ id: 'web-queued-1', conv: ack.conv, seq: reply.seq + 1 });
  expect(afterReload.synced).toMatchObject({ synced_seq: reply.seq + 1 });
  await waitFor(() => nodeSaw.messages.some((m) => m.id === 'web-queued-1'), 'node receives the message queued in the browser');
  expect(nodeSaw.errors).toEqual([]);
  await page.close();
});
