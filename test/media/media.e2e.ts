/**
 * End to end, over real sockets: MediaService + routes on a real fastify server on an
 * ephemeral port, a real PGlite database with the migrations, and a real object store
 * (the local directory, or S3 on s3rver). Uploads go through the signed URL with real
 * HTTP; time moves on an injected clock and the tiering worker runs the real rules.
 * A function of a store factory, so that the same story runs on both drivers.
 */
import { createHash, randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../core/clock.ts';
import { openDb, type Db } from '../../core/db.ts';
import { ChatError } from '../../core/errors.ts';
import { migrate } from '../../core/migrate.ts';
import { ChatStore } from '../../core/store.ts';
import { Registry } from 'prom-client';
import { defaultMediaConfig, type MediaConfig } from '../../workers/media/config.ts';
import { createMediaMetrics } from '../../workers/media/metrics.ts';
import { blobKey, thumbnailKey, uploadKey, type ObjectStore } from '../../workers/media/object-store.ts';
import { registerMediaRoutes } from '../../workers/media/routes.ts';
import { MediaService, type MediaRecord, type UploadTicket } from '../../workers/media/service.ts';
import { TieringWorker } from '../../workers/media/tiering.ts';
import { absolute } from './helpers.ts';

export interface E2eStore {
  objects: ObjectStore;
  /** true when a cold read is answered 202 first (an archive retrieval takes time). */
  restoreTakesTime: boolean;
  cleanup(): Promise<void>;
}

const day = 86_400_000;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A bearer of `user:device` stands for a token here; the real JWT check is the broker's. */
async function authenticate(header: string | undefined): Promise<{ user: string; device: string }> {
  const m = /^Bearer ([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)$/.exec(header ?? '');
  if (!m) throw new ChatError('forbidden', 'missing or invalid bearer token', { status: 401 });
  return { user: m[1]!, device: m[2]! };
}

export function mediaEndToEnd(name: string, openStore: (clock: FakeClock, config: MediaConfig) => Promise<E2eStore>): void {
  describe(`media end to end: ${name}`, () => {
    const clock = new FakeClock(Date.now());
    const config = defaultMediaConfig({ restoreRetryAfterSeconds: 30, local: { restoreDelaySeconds: 600 } });
    let db: Db;
    let chat: ChatStore;
    let store: E2eStore;
    let media: MediaService;
    let app: FastifyInstance;
    let origin: string;
    let dm: string;
    let group: string;
    const registry = new Registry();
    const metrics = createMediaMetrics(registry);
    let worker: TieringWorker;

    const http = (user: string | undefined, path: string, init: RequestInit = {}) =>
      fetch(`${origin}${path}`, {
        redirect: 'manual',
        ...init,
        headers: { ...(user ? { authorization: `Bearer ${user}:phone` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
      });

    async function startUpload(user: string, conv: string, bytes: Buffer, contentType: string, declared: Partial<{ size: number; sha256: string }> = {}): Promise<UploadTicket> {
      const r = await http(user, '/v1/media', {
        method: 'POST',
        body: JSON.stringify({ conv, content_type: contentType, size: declared.size ?? bytes.length, sha256: declared.sha256 ?? sha256(bytes) }),
      });
      expect(r.status).toBe(201);
      return (await r.json()) as UploadTicket;
    }

    async function putBytes(ticket: UploadTicket, bytes: Buffer): Promise<void> {
      const r = await fetch(absolute(ticket.upload_url, origin), { method: 'PUT', body: new Uint8Array(bytes), headers: ticket.upload_headers });
      expect(r.status).toBe(200);
    }

    async function complete(user: string, id: string): Promise<Response> {
      return http(user, `/v1/media/${id}/complete`, { method: 'POST', body: '{}' });
    }

    async function upload(user: string, conv: string, bytes: Buffer, contentType: string): Promise<MediaRecord> {
      const ticket = await startUpload(user, conv, bytes, contentType);
      await putBytes(ticket, bytes);
      const r = await complete(user, ticket.media.id);
      expect(r.status).toBe(200);
      return (await r.json()) as MediaRecord;
    }

    /** GET /v1/media/{id} as `user`, following a 302 to the signed URL. */
    async function download(user: string, id: string): Promise<{ status: number; bytes?: Buffer; retryAfter?: string | null; contentType?: string | null }> {
      const r = await http(user, `/v1/media/${id}`);
      if (r.status !== 302) return { status: r.status, retryAfter: r.headers.get('retry-after') };
      const d = await fetch(absolute(r.headers.get('location')!, origin));
      expect(d.status).toBe(200);
      return { status: 302, bytes: Buffer.from(await d.arrayBuffer()), contentType: d.headers.get('content-type') };
    }

    const tierOf = async (id: string) => (await db.query<{ tier: string | null }>('select tier from media where id = $1', [id])).rows[0]?.tier;

    let image: Buffer;
    let imageRecord: MediaRecord;
    let shared: Buffer;
    let sharedA: MediaRecord;
    let sharedB: MediaRecord;
    let other: Buffer;
    let otherRecord: MediaRecord;
    let abandonedId: string;
    let imageMessageSeq: number;

    beforeAll(async () => {
      db = await openDb({});
      await migrate(db);
      chat = new ChatStore(db);
      for (const u of ['alice', 'bob', 'carol']) await chat.createUser(u, 'hash', clock.now());
      dm = await chat.openDm('alice', 'bob', clock.now());
      group = (await chat.createGroup({ owner: 'bob', name: 'g', members: ['alice'], kind: 'group', now: clock.now(), fanoutWriteMax: 1000 })).conv;
      store = await openStore(clock, config);
      media = new MediaService({ db, chat, objects: store.objects, config, clock });
      worker = new TieringWorker({ db, objects: store.objects, config, clock, metrics });
      app = Fastify();
      registerMediaRoutes(app, { media, authenticate });
      origin = await app.listen({ host: '127.0.0.1', port: 0 });
      // Noise compresses badly: a real PNG well over the 128 KiB that stays hot by size.
      image = await sharp({ create: { width: 320, height: 320, channels: 3, background: 'white', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).png().toBuffer();
      shared = randomBytes(200_000);
      other = randomBytes(180_000);
    });

    afterAll(async () => {
      await app?.close();
      await store?.objects.close();
      await store?.cleanup();
      await db?.close();
    });

    it('uploads through the signed URL, completes with a preview, and stores the bytes once', async () => {
      expect(image.length).toBeGreaterThan(131_072);
      imageRecord = await upload('alice', dm, image, 'image/png');
      expect(imageRecord).toMatchObject({ conv: dm, owner: 'alice', content_type: 'image/png', size: image.length, sha256: sha256(image), state: 'complete', tier: 'hot' });
      expect(imageRecord.thumbnail).toMatch(/^data:image\/jpeg;base64,/);
      const preview = Buffer.from(imageRecord.thumbnail!.split(',')[1]!, 'base64');
      expect(preview.length).toBeLessThanOrEqual(config.thumbnail.maxBytes);
      expect((await sharp(preview).metadata()).format).toBe('jpeg');
      expect(await store.objects.head(thumbnailKey(imageRecord.sha256))).toMatchObject({ tier: 'hot' });
      expect(await store.objects.head(uploadKey(imageRecord.id))).toBeUndefined();
      // Completing again is harmless and returns the same record.
      const again = await complete('alice', imageRecord.id);
      expect(again.status).toBe(200);
      expect(((await again.json()) as MediaRecord).id).toBe(imageRecord.id);
      // Ingest: the lead's code calls checkAttachable, then appends the message.
      await media.checkAttachable('alice', dm, [imageRecord.id]);
      const [stored] = await chat.appendMessages([{ conv: dm, sender: 'alice', clientId: 'msg-image', body: { text: 'look' }, media: [imageRecord.id], ts: clock.now() }]);
      imageMessageSeq = stored!.seq;
    });

    it('refuses to attach what is not the sender\'s, not in that conversation, or not completed', async () => {
      await expect(media.checkAttachable('bob', dm, [imageRecord.id])).rejects.toMatchObject({ code: 'forbidden' });
      await expect(media.checkAttachable('alice', group, [imageRecord.id])).rejects.toMatchObject({ code: 'not_found' });
      await expect(media.checkAttachable('alice', dm, ['m_doesnotexist'])).rejects.toMatchObject({ code: 'not_found' });
      await expect(media.checkAttachable('alice', dm, ['not an id'])).rejects.toMatchObject({ code: 'bad_request' });
      await expect(media.checkAttachable('alice', dm, [imageRecord.id, imageRecord.id])).rejects.toMatchObject({ code: 'bad_request' });
      const pending = await startUpload('alice', dm, Buffer.from('later'), 'text/plain');
      abandonedId = pending.media.id;
      await expect(media.checkAttachable('alice', dm, [abandonedId])).rejects.toMatchObject({ code: 'bad_request' });
    });

    it('lets the other member download it and refuses a non-member (403) and no token (401)', async () => {
      const got = await download('bob', imageRecord.id);
      expect(got.status).toBe(302);
      expect(got.bytes!.equals(image)).toBe(true);
      expect(got.contentType).toBe('image/png');
      const refused = await http('carol', `/v1/media/${imageRecord.id}`);
      expect(refused.status).toBe(403);
      expect(await refused.json()).toEqual({ error: { code: 'not_member', message: `you are not a member of ${dm}` } });
      const upload = await http('carol', '/v1/media', { method: 'POST', body: JSON.stringify({ conv: dm, content_type: 'image/png', size: 10, sha256: 'a'.repeat(64) }) });
      expect(upload.status).toBe(403);
      expect((await http(undefined, `/v1/media/${imageRecord.id}`)).status).toBe(401);
      expect((await http('bob', '/v1/media/m_nothere')).status).toBe(404);
      const info = await http('bob', `/v1/media/${imageRecord.id}/info`);
      expect(((await info.json()) as MediaRecord).thumbnail).toBe(imageRecord.thumbnail);
    });

    it('checks size and type limits at the request', async () => {
      const tooBig = await http('alice', '/v1/media', { method: 'POST', body: JSON.stringify({ conv: dm, content_type: 'video/mp4', size: config.maxBytes + 1, sha256: 'a'.repeat(64) }) });
      expect(tooBig.status).toBe(413);
      expect(((await tooBig.json()) as { error: { code: string } }).error.code).toBe('too_large');
      const html = await http('alice', '/v1/media', { method: 'POST', body: JSON.stringify({ conv: dm, content_type: 'text/html', size: 10, sha256: 'a'.repeat(64) }) });
      expect(html.status).toBe(415);
      const bad = await http('alice', '/v1/media', { method: 'POST', body: JSON.stringify({ conv: dm, content_type: 'image/png', size: -1 }) });
      expect(bad.status).toBe(400);
    });

    it('rejects a wrong checksum or size at completion (422) and removes the bytes', async () => {
      const bytes = randomBytes(5000);
      const wrongSum = await startUpload('alice', dm, bytes, 'application/octet-stream', { sha256: sha256(Buffer.from('something else')) });
      await putBytes(wrongSum, bytes);
      const r1 = await complete('alice', wrongSum.media.id);
      expect(r1.status).toBe(422);
      expect(((await r1.json()) as { error: { code: string; message: string } }).error.message).toMatch(/sha256/);
      expect(await store.objects.head(uploadKey(wrongSum.media.id))).toBeUndefined();
      expect((await complete('alice', wrongSum.media.id)).status).toBe(404);

      // A store that does not hold the signed length (s3rver; S3 and the local routes do)
      // lets fewer bytes in: completion is the check that always holds.
      const wrongSize = await startUpload('alice', dm, bytes, 'application/octet-stream');
      await store.objects.put(uploadKey(wrongSize.media.id), bytes.subarray(0, 4000), { contentType: 'application/octet-stream' });
      const r2 = await complete('alice', wrongSize.media.id);
      expect(r2.status).toBe(422);
      expect(((await r2.json()) as { error: { message: string } }).error.message).toMatch(/stored 4000 bytes, declared 5000/);
      expect(await store.objects.head(uploadKey(wrongSize.media.id))).toBeUndefined();

      // Bytes that are not the declared image type.
      const fake = randomBytes(3000);
      const notPng = await startUpload('alice', dm, fake, 'image/png');
      await putBytes(notPng, fake);
      expect((await complete('alice', notPng.media.id)).status).toBe(422);

      // Nothing uploaded yet: 400, and the upload is still there to finish.
      const early = await startUpload('alice', dm, bytes, 'application/octet-stream');
      expect((await complete('alice', early.media.id)).status).toBe(400);
      await putBytes(early, bytes);
      expect((await complete('alice', early.media.id)).status).toBe(200);
      // Only the uploader completes.
      expect((await complete('bob', early.media.id)).status).toBe(404);
    });

    it('counts two concurrent completions of one upload once', async () => {
      const bytes = randomBytes(4000);
      const ticket = await startUpload('bob', group, bytes, 'application/octet-stream');
      await putBytes(ticket, bytes);
      const [a, b] = await Promise.all([media.complete('bob', ticket.media.id), media.complete('bob', ticket.media.id)]);
      expect(a.state).toBe('complete');
      expect(b.state).toBe('complete');
      const refs = await db.query<{ refcount: number }>('select refcount from media_blobs where sha256 = $1', [sha256(bytes)]);
      expect(refs.rows).toEqual([{ refcount: 1 }]);
    });

    it('keeps one object for two identical uploads (dedupe by sha256, reference counted)', async () => {
      sharedA = await upload('alice', dm, shared, 'application/octet-stream');
      sharedB = await upload('bob', group, shared, 'application/octet-stream');
      expect(sharedA.id).not.toBe(sharedB.id);
      expect(sharedA.sha256).toBe(sharedB.sha256);
      const blobs = await db.query<{ refcount: number; object_key: string }>('select refcount, object_key from media_blobs where sha256 = $1', [sharedA.sha256]);
      expect(blobs.rows).toEqual([{ refcount: 2, object_key: blobKey(sharedA.sha256) }]);
      expect(await store.objects.head(blobKey(sharedA.sha256))).toMatchObject({ size: shared.length });
      // Each item is readable by the members of its own conversation only.
      expect((await download('alice', sharedB.id)).bytes!.equals(shared)).toBe(true);
      expect((await download('carol', sharedB.id)).status).toBe(403);
    });

    it('moves items hot -> warm with time, and a read of a warm item counts as an access', async () => {
      otherRecord = await upload('alice', dm, other, 'application/octet-stream');
      const dry = await worker.runUnlocked({ dryRun: true });
      expect(dry.plan.moves).toEqual([]);
      clock.advance(31 * day);
      const plan = await worker.runUnlocked({ dryRun: true });
      // The 5000-byte item stays hot: small objects never move.
      expect(plan.plan.moves).toEqual([{ from: 'hot', to: 'warm', objects: 3, bytes: image.length + shared.length + other.length }]);
      expect(await tierOf(imageRecord.id)).toBe('hot'); // a dry run changes nothing
      const run = await worker.run();
      expect(run).not.toBe('locked');
      if (run === 'locked') return;
      expect(run.outcome).toMatchObject({ moved: 3, failed: 0, abandonedUploadsDropped: 1 });
      expect(await db.query('select 1 from media where id = $1', [abandonedId])).toMatchObject({ rowCount: 0 });
      for (const r of [imageRecord, sharedA, sharedB, otherRecord]) expect(await tierOf(r.id)).toBe('warm');
      expect(await store.objects.head(blobKey(imageRecord.sha256))).toMatchObject({ tier: 'warm' });

      const read = await download('bob', otherRecord.id);
      expect(read.status).toBe(302);
      expect(read.bytes!.equals(other)).toBe(true);
      const accessed = await db.query<{ last_access_at: number }>('select last_access_at from media where id = $1', [otherRecord.id]);
      expect(accessed.rows[0]!.last_access_at).toBe(clock.now());
      clock.advance(60_000);
      const back = await worker.run();
      if (back === 'locked') throw new Error('locked');
      expect(back.outcome.moved).toBe(1);
      expect(await tierOf(otherRecord.id)).toBe('hot');
      const gauges = await registry.getMetricsAsJSON();
      const bytes = gauges.find((g) => g.name === 'chat_media_stored_bytes')!.values;
      // Also hot: the 5000- and 4000-byte items (small items never move).
      expect(bytes.find((v) => v.labels.tier === 'hot')!.value).toBe(other.length + 5000 + 4000);
    });

    it('moves on to cold; a cold item is restored (202 with Retry-After) and then served', async () => {
      clock.advance(90 * day);
      const run = await worker.run();
      if (run === 'locked') throw new Error('locked');
      expect(await tierOf(imageRecord.id)).toBe('cold');
      expect(await tierOf(sharedB.id)).toBe('cold');
      // Read 90 days ago, but the DM has been silent for 121 days (x0.5): cold too.
      expect(await tierOf(otherRecord.id)).toBe('cold');
      const first = await download('bob', imageRecord.id);
      if (store.restoreTakesTime) {
        expect(first).toMatchObject({ status: 202, retryAfter: '30' });
        const r = await http('bob', `/v1/media/${imageRecord.id}`);
        expect(r.status).toBe(202); // still restoring: no second restore
        expect(((await r.json()) as { restoring: boolean }).restoring).toBe(true);
        clock.advance(601_000);
        const served = await download('bob', imageRecord.id);
        expect(served.status).toBe(302);
        expect(served.bytes!.equals(image)).toBe(true);
      } else {
        expect(first.status).toBe(302);
        expect(first.bytes!.equals(image)).toBe(true);
      }
      // The read was an access: the next run brings the item back to hot.
      const after = await worker.run();
      if (after === 'locked') throw new Error('locked');
      expect(after.outcome.failed).toBe(0);
      expect(await tierOf(imageRecord.id)).toBe('hot');
      const again = await download('alice', imageRecord.id);
      expect(again.status).toBe(302);
    });

    it('re-uploading bytes whose blob is cold makes it hot again without a restore', async () => {
      expect(await tierOf(sharedA.id)).toBe('cold');
      const third = await upload('alice', dm, shared, 'application/octet-stream');
      expect(third.tier).toBe('hot');
      expect(await tierOf(sharedA.id)).toBe('hot');
      expect((await download('bob', sharedA.id)).status).toBe(302);
      const refs = await db.query<{ refcount: number }>('select refcount from media_blobs where sha256 = $1', [sharedA.sha256]);
      expect(refs.rows[0]!.refcount).toBe(3);
    });

    it('deletes items past retention and keeps a tombstone the message still lists', async () => {
      const retention = new TieringWorker({ db, objects: store.objects, config: defaultMediaConfig({ tiering: { rules: { retentionDays: 100 } } }), clock });
      const plan = await retention.runUnlocked({ dryRun: true });
      expect(plan.plan.deletions.items).toBeGreaterThanOrEqual(4);
      const run = await retention.run();
      if (run === 'locked') throw new Error('locked');
      expect(run.outcome.failed).toBe(0);
      const gone = await http('bob', `/v1/media/${imageRecord.id}`);
      expect(gone.status).toBe(410);
      expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('not_found');
      const info = await http('bob', `/v1/media/${imageRecord.id}/info`);
      expect(await info.json()).toMatchObject({ id: imageRecord.id, state: 'deleted', tier: null });
      expect((await chat.getMessage(dm, imageMessageSeq))?.media).toEqual([imageRecord.id]);
      expect(await store.objects.head(blobKey(imageRecord.sha256))).toBeUndefined();
      expect(await store.objects.head(thumbnailKey(imageRecord.sha256))).toBeUndefined();
      expect((await db.query('select 1 from media_blobs where sha256 = $1', [imageRecord.sha256])).rowCount).toBe(0);
      await expect(media.checkAttachable('alice', dm, [imageRecord.id])).rejects.toMatchObject({ code: 'not_found' });
    });
  });
}
