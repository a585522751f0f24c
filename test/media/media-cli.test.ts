/**
 * The operator CLI as an operator runs it (`npm run media -- ...` is `tsx workers/media-cli.ts`),
 * on an embedded store in a temporary DATA_DIR seeded with one old upload.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.ts';
import { openDb } from '../../core/db.ts';
import { migrate } from '../../core/migrate.ts';
import { ChatStore } from '../../core/store.ts';
import { defaultMediaConfig } from '../../workers/media/config.ts';
import { LocalObjectStore } from '../../workers/media/local-store.ts';
import { uploadKey } from '../../workers/media/object-store.ts';
import { MediaService } from '../../workers/media/service.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

describe('media CLI', () => {
  let dataDir: string;
  const bytes = randomBytes(300_000);

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'media-cli-'));
    // An upload from long ago (the fake clock's 2023): idle far past every threshold.
    const clock = new FakeClock();
    const config = defaultMediaConfig();
    const db = await openDb({ pgliteDir: join(dataDir, 'pglite') });
    await migrate(db);
    const chat = new ChatStore(db);
    await chat.createUser('alice', 'h', clock.now());
    await chat.createUser('bob', 'h', clock.now());
    const dm = await chat.openDm('alice', 'bob', clock.now());
    const objects = await LocalObjectStore.open(config, dataDir, clock);
    const media = new MediaService({ db, chat, objects, config, clock });
    const ticket = await media.createUpload('alice', { conv: dm, content_type: 'application/octet-stream', size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    await objects.put(uploadKey(ticket.media.id), bytes, { contentType: 'application/octet-stream' });
    await media.complete('alice', ticket.media.id);
    await db.close();
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    run(join(root, 'node_modules', '.bin', 'tsx'), [join(root, 'workers', 'media-cli.ts'), ...args], {
      cwd: root,
      env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '', S3_BUCKET: '', S3_ENDPOINT: '', CONFIG_FILE: '' },
    });

  // One spawn (on-disk PGlite is slow to open); applying is the same TieringWorker.run the end-to-end tests cover.
  it('shows what would move, bytes and cost per tier, with progress on stderr, and the same figures as gauges', async () => {
    const { stdout, stderr } = await cli('tiering', '--dry-run', '--metrics');
    expect(stderr).toMatch(/evaluating \[#+\] 100% 1\/1/);
    expect(stdout).toMatch(/dry run: nothing changed/);
    expect(stdout).toMatch(/would move:\n {2}hot -> cold: 1 objects, 293\.0 KiB/);
    expect(stdout).toMatch(/^hot\s+1\s+293\.0 KiB\s+0\.000006\s+0 B\s+0\.00$/m);
    expect(stdout).toMatch(/^cold\s+0\s+0 B\s+0\.00\s+293\.0 KiB\s+0\.000001$/m);
    expect(stdout).toMatch(/^chat_media_stored_bytes\{tier="hot"\} 300000$/m);
    expect(stdout).toMatch(/^chat_media_tiering_pending_moves\{from="hot",to="cold"\} 1$/m);
  });
});
