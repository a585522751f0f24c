/**
 * Previews for constrained devices: a tiny JPEG (or WebP) under a byte budget, made once
 * at completion with sharp (libvips: decodes the common formats, honours EXIF rotation,
 * strips metadata, and guards against decompression bombs with limitInputPixels).
 * Shrinks quality, then size, until the preview fits; gives up (no preview) otherwise.
 */
import sharp from 'sharp';
import type { MediaConfig } from './config.ts';

export interface Preview {
  data: Buffer;
  contentType: string;
  width: number;
  height: number;
}

const qualities = [60, 45, 30];

export async function makePreview(source: Buffer, options: MediaConfig['thumbnail']): Promise<Preview | undefined> {
  try {
    // Decode once (first frame of an animation), rotate upright, then re-encode per attempt.
    const base = await sharp(source, { limitInputPixels: options.maxInputPixels, failOn: 'error' })
      .rotate()
      .resize({ width: options.maxDimension, height: options.maxDimension, fit: 'inside', withoutEnlargement: true })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    for (let side = options.maxDimension; side >= 16; side = Math.floor(side * 0.75)) {
      for (const quality of qualities) {
        const pipeline = sharp(base.data, { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } })
          .resize({ width: side, height: side, fit: 'inside', withoutEnlargement: true });
        const encoded = options.format === 'webp'
          ? pipeline.webp({ quality, effort: 4 })
          : pipeline.jpeg({ quality, mozjpeg: true, chromaSubsampling: '4:2:0' });
        const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
        if (data.length <= options.maxBytes) {
          return { data, contentType: options.format === 'webp' ? 'image/webp' : 'image/jpeg', width: info.width, height: info.height };
        }
      }
    }
    return undefined;
  } catch {
    // Not decodable (corrupt, unsupported, over the pixel limit): the item simply has no preview.
    return undefined;
  }
}

export function dataUrl(contentType: string, bytes: Buffer): string {
  return `data:${contentType};base64,${bytes.toString('base64')}`;
}
