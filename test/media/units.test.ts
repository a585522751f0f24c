/**
 * Small pure pieces: content types, ranges, previews under the byte budget, the config
 * section and its written-out defaults, the report's formatting.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { mediaConfigSchema } from '../../workers/media/config.ts';
import {
  bytesMatchContentType,
  dispositionFor,
  isAllowedContentType,
  normalizeContentType,
  valueForContentType,
} from '../../workers/media/content-types.ts';
import { formatBytes } from '../../workers/media/report.ts';
import { parseRange } from '../../workers/media/routes.ts';
import { parseUploadRequest } from '../../workers/media/service.ts';
import { makePreview } from '../../workers/media/thumbnail.ts';

describe('content types', () => {
  it('normalises the declared type and matches patterns', () => {
    expect(normalizeContentType(' Image/JPEG; charset=binary')).toBe('image/jpeg');
    expect(normalizeContentType('not a type')).toBeUndefined();
    expect(normalizeContentType('image/')).toBeUndefined();
    expect(isAllowedContentType('video/webm', ['image/*', 'video/webm'])).toBe(true);
    expect(isAllowedContentType('text/html', ['image/*', 'text/plain'])).toBe(false);
    expect(valueForContentType('video/mp4', { '*': 1, 'video/*': 2, 'video/mp4': 3 })).toBe(3);
    expect(valueForContentType('video/ogg', { '*': 1, 'video/*': 2 })).toBe(2);
    expect(valueForContentType('text/plain', { 'video/*': 2 })).toBeUndefined();
  });

  it('checks the first bytes of the types it knows and lets the others pass', () => {
    expect(bytesMatchContentType('image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]))).toBe(true);
    expect(bytesMatchContentType('image/png', Buffer.from('GIF89a...'))).toBe(false);
    expect(bytesMatchContentType('image/jpeg', Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe(true);
    expect(bytesMatchContentType('application/pdf', Buffer.from('%PDF-1.7'))).toBe(true);
    expect(bytesMatchContentType('video/mp4', Buffer.from('\0\0\0\x18ftypisom', 'latin1'))).toBe(true);
    expect(bytesMatchContentType('application/octet-stream', Buffer.from('anything'))).toBe(true);
  });

  it('serves media inline and everything else (and SVG) as an attachment', () => {
    expect(dispositionFor('image/png')).toBe('inline');
    expect(dispositionFor('video/mp4')).toBe('inline');
    expect(dispositionFor('image/svg+xml')).toBe('attachment');
    expect(dispositionFor('text/plain')).toBe('attachment');
  });

  it('validates an upload request', () => {
    expect(parseUploadRequest({ conv: 'c', content_type: 'image/png', size: 3, sha256: 'A'.repeat(64) }).sha256).toBe('a'.repeat(64));
    expect(() => parseUploadRequest({ conv: 'c', content_type: 'image/png', size: 1.5, sha256: 'a'.repeat(64) })).toThrow(/size/);
    expect(() => parseUploadRequest({ conv: 'c', content_type: 'image/png', size: 3, sha256: 'xyz' })).toThrow(/sha256/);
    expect(() => parseUploadRequest(null)).toThrow();
  });
});

describe('ranges', () => {
  it('parses one bytes range', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=50-500', 100)).toEqual({ start: 50, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseRange(undefined, 100)).toBeUndefined();
  });
});

describe('previews', () => {
  const options = mediaConfigSchema.parse({}).thumbnail;

  it('fits a large photo-like image into the byte budget, upright and small', async () => {
    const photo = await sharp({ create: { width: 2400, height: 1600, channels: 3, background: 'white', noise: { type: 'gaussian', mean: 120, sigma: 60 } } })
      .jpeg({ quality: 90 })
      .toBuffer();
    const preview = await makePreview(photo, options);
    expect(preview).toBeDefined();
    expect(preview!.data.length).toBeLessThanOrEqual(2048);
    expect(preview!.contentType).toBe('image/jpeg');
    expect(Math.max(preview!.width, preview!.height)).toBeLessThanOrEqual(96);
    expect(preview!.width).toBeGreaterThan(preview!.height);
    const webp = await makePreview(photo, { ...options, format: 'webp', maxBytes: 1024 });
    expect(webp!.contentType).toBe('image/webp');
    expect(webp!.data.length).toBeLessThanOrEqual(1024);
  });

  it('gives no preview for bytes that are not an image or over the pixel limit', async () => {
    expect(await makePreview(Buffer.from('not an image at all'), options)).toBeUndefined();
    const big = await sharp({ create: { width: 1000, height: 1000, channels: 3, background: 'red' } }).png().toBuffer();
    expect(await makePreview(big, { ...options, maxInputPixels: 1000 })).toBeUndefined();
  });
});

describe('media config', () => {
  it('config/default.json writes out exactly the schema defaults', () => {
    const file = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'config', 'default.json'), 'utf8')) as { media: unknown };
    expect(file.media).toEqual(mediaConfigSchema.parse({}));
  });

  it('is part of the app config: partial overrides keep the other defaults, bad values name the key', () => {
    const config = loadConfig({}, { media: mediaConfigSchema.parse({ maxBytes: 1000, tiering: { rules: { retentionDays: 30 } } }) });
    expect(config.media.maxBytes).toBe(1000);
    expect(config.media.tiering.rules.retentionDays).toBe(30);
    expect(config.media.tiering.rules.warmAfterIdleDays).toBe(30);
    expect(() => mediaConfigSchema.parse({ s3: { tierMode: 'folders' } })).toThrow(/tierMode/);
  });
});

describe('report', () => {
  it('formats bytes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.00 GiB');
  });
});
