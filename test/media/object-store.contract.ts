/**
 * The object-store contract: one suite, a function of a factory (STYLE 1), run against the
 * local directory and S3 (s3rver, storage-class and bucket-per-tier modes). Where the
 * test server cannot show a behaviour of real S3, the fixture says so in `differences`
 * and the suite checks what it can (docs/media.md lists them).
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ObjectArchivedError,
  ObjectNotFoundError,
  ObjectTooLargeError,
  type ObjectStore,
} from '../../workers/media/object-store.ts';
import { absolute, readAll } from './helpers.ts';

export interface ObjectStoreFixture {
  store: ObjectStore;
  /** Origin relative signed URLs resolve against. */
  origin: string;
  /** Moves the store's time forward (a fake clock, or real waiting when the server keeps its own). */
  passTime(ms: number): Promise<void>;
  /** Lets the restores started so far finish. */
  completeRestores(): Promise<void>;
  differences: {
    /** The server rejects a URL whose signature was tampered with (s3rver: no). */
    verifiesSignatures: boolean;
    /** The server refuses to serve an archived (cold, unrestored) object (s3rver: no). */
    enforcesArchive: boolean;
  };
  cleanup(): Promise<void>;
}

export function objectStoreContract(name: string, open: () => Promise<ObjectStoreFixture>): void {
  describe(`object store contract: ${name}`, () => {
    let f: ObjectStoreFixture;
    let store: ObjectStore;
    let n = 0;
    const key = (prefix: 'blobs' | 'uploads' | 'thumbs' = 'blobs') => `${prefix}/t${Date.now().toString(36)}/${++n}`;

    beforeAll(async () => {
      f = await open();
      store = f.store;
    });
    afterAll(async () => {
      await f.store.close();
      await f.cleanup();
    });

    it('puts, heads, gets and deletes; a missing object is undefined, NotFound, or a no-op delete', async () => {
      const k = key();
      await store.put(k, Buffer.from('hello bytes'), { contentType: 'text/plain' });
      expect(await store.head(k)).toEqual({ key: k, size: 11, tier: 'hot' });
      expect((await readAll(await store.get(k))).toString()).toBe('hello bytes');
      await store.delete(k);
      expect(await store.head(k)).toBeUndefined();
      expect(await store.tierState(k)).toBeUndefined();
      await expect(store.get(k)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.setTier(k, 'warm')).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.restore(k, { days: 1 })).rejects.toBeInstanceOf(ObjectNotFoundError);
      await store.delete(k);
    });

    it('replaces on put, streams a body, and refuses one over maxBytes without storing it', async () => {
      const k = key();
      await store.put(k, Buffer.from('first'), { contentType: 'text/plain' });
      await store.put(k, Readable.from([Buffer.from('second '), Buffer.from('version')]), { contentType: 'text/plain' });
      expect((await readAll(await store.get(k))).toString()).toBe('second version');
      const big = key();
      await expect(store.put(big, Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), { contentType: 'application/octet-stream', maxBytes: 1000 }))
        .rejects.toBeInstanceOf(ObjectTooLargeError);
      expect(await store.head(big)).toBeUndefined();
    });

    it('copies to another key in hot, leaving the source', async () => {
      const a = key('uploads');
      const b = key();
      await store.put(a, Buffer.from('copy me'), { contentType: 'text/plain' });
      await store.copy(a, b, { contentType: 'text/plain' });
      expect(await store.head(b)).toMatchObject({ size: 7, tier: 'hot' });
      expect((await readAll(await store.get(a))).toString()).toBe('copy me');
      await expect(store.copy(key(), key(), { contentType: 'text/plain' })).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it('refuses keys outside the key pattern before any I/O', async () => {
      for (const bad of ['../etc/passwd', 'blobs/../x', 'other/x', 'blobs/', '/blobs/x', 'blobs//x']) {
        await expect(store.head(bad)).rejects.toThrow(/invalid object key/);
      }
    });

    it('uploads through a signed PUT URL and downloads through a signed GET URL over HTTP', async () => {
      const k = key('uploads');
      const body = Buffer.from('signed upload body');
      const put = await store.signedPutUrl(k, { contentType: 'image/png', size: body.length, expiresInSeconds: 60 });
      expect(put.headers['content-type']).toBe('image/png');
      expect(put.url).not.toMatch(/x-amz-checksum/i);
      const r = await fetch(absolute(put.url, f.origin), { method: 'PUT', body, headers: put.headers });
      expect(r.status).toBe(200);
      expect(await store.head(k)).toMatchObject({ size: body.length, tier: 'hot' });
      const get = await store.signedGetUrl(k, { expiresInSeconds: 60, contentType: 'image/png', disposition: 'inline' });
      const d = await fetch(absolute(get.url, f.origin));
      expect(d.status).toBe(200);
      expect(d.headers.get('content-type')).toBe('image/png');
      expect(d.headers.get('content-disposition')).toBe('inline');
      expect(Buffer.from(await d.arrayBuffer()).equals(body)).toBe(true);
      // Players and resumed downloads ask for a range.
      const part = await fetch(absolute(get.url, f.origin), { headers: { range: 'bytes=7-12' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes 7-12/${body.length}`);
      expect(await part.text()).toBe('upload');
    });

    it('refuses an expired signed URL', async () => {
      const k = key('uploads');
      await store.put(k, Buffer.from('x'), { contentType: 'text/plain' });
      const get = await store.signedGetUrl(k, { expiresInSeconds: 1 });
      const put = await store.signedPutUrl(key('uploads'), { contentType: 'text/plain', size: 1, expiresInSeconds: 1 });
      await f.passTime(2200);
      expect((await fetch(absolute(get.url, f.origin))).status).toBe(403);
      expect((await fetch(absolute(put.url, f.origin), { method: 'PUT', body: 'x', headers: put.headers })).status).toBe(403);
    });

    it('refuses a tampered signature where the server verifies them', async () => {
      if (!f.differences.verifiesSignatures) return;
      const k = key('uploads');
      await store.put(k, Buffer.from('x'), { contentType: 'text/plain' });
      const get = await store.signedGetUrl(k, { expiresInSeconds: 60 });
      const other = get.url.replace(/(sig|X-Amz-Signature)=([A-Za-z0-9_-])/, (_m, p: string, c: string) => `${p}=${c === 'A' ? 'B' : 'A'}`);
      expect(other).not.toBe(get.url);
      expect((await fetch(absolute(other, f.origin))).status).toBe(403);
      const put = await store.signedPutUrl(k, { contentType: 'image/png', size: 1, expiresInSeconds: 60 });
      const wrongType = await fetch(absolute(put.url, f.origin), { method: 'PUT', body: 'x', headers: { 'content-type': 'text/html' } });
      expect(wrongType.status).toBe(403);
    });

    it('moves hot -> warm -> cold; cold needs a restore before it is read or moved out', async () => {
      const k = key();
      await store.put(k, Buffer.from('tiered bytes'), { contentType: 'application/octet-stream' });
      await store.setTier(k, 'warm');
      expect(await store.head(k)).toMatchObject({ tier: 'warm', size: 12 });
      expect(await store.tierState(k)).toEqual({ tier: 'warm', readable: true, restoring: false });
      expect((await readAll(await store.get(k))).toString()).toBe('tiered bytes');
      await store.setTier(k, 'warm'); // same tier: a no-op
      await store.setTier(k, 'cold');
      expect(await store.tierState(k)).toEqual({ tier: 'cold', readable: false, restoring: false });
      await expect(store.setTier(k, 'hot')).rejects.toBeInstanceOf(ObjectArchivedError);
      if (f.differences.enforcesArchive) {
        await expect(store.get(k)).rejects.toBeInstanceOf(ObjectArchivedError);
        const url = await store.signedGetUrl(k, { expiresInSeconds: 60 });
        expect((await fetch(absolute(url.url, f.origin))).status).toBe(403);
      }
      const started = await store.restore(k, { days: 2 });
      expect(started.readable || started.restoring).toBe(true);
      await f.completeRestores();
      const restored = await store.tierState(k);
      expect(restored?.readable).toBe(true);
      expect((await readAll(await store.get(k))).toString()).toBe('tiered bytes');
      const url = await store.signedGetUrl(k, { expiresInSeconds: 60, tier: restored!.tier });
      expect(await (await fetch(absolute(url.url, f.origin))).text()).toBe('tiered bytes');
      await store.setTier(k, 'hot');
      expect(await store.tierState(k)).toEqual({ tier: 'hot', readable: true, restoring: false });
    });

    it('a put or copy over a cold object replaces it in hot; delete removes it from every tier', async () => {
      const k = key();
      await store.put(k, Buffer.from('old'), { contentType: 'text/plain' });
      await store.setTier(k, 'cold');
      await store.put(k, Buffer.from('new!'), { contentType: 'text/plain' });
      expect(await store.tierState(k)).toEqual({ tier: 'hot', readable: true, restoring: false });
      expect(await store.head(k)).toMatchObject({ size: 4 });
      await store.setTier(k, 'cold');
      const src = key('uploads');
      await store.put(src, Buffer.from('fresh'), { contentType: 'text/plain' });
      await store.copy(src, k, { contentType: 'text/plain' });
      expect(await store.head(k)).toMatchObject({ size: 5, tier: 'hot' });
      await store.setTier(k, 'warm');
      await store.delete(k);
      expect(await store.head(k)).toBeUndefined();
    });
  });
}
