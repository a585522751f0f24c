/**
 * Content types as pure functions: normalising what a client declares, matching the
 * allow-list and rule patterns (`image/*`), checking the first bytes of an upload against
 * the declared type, and how a download is served (inline or as an attachment).
 */

const essence = /^([a-z0-9][a-z0-9!#$&^_.+-]{0,126})\/([a-z0-9][a-z0-9!#$&^_.+-]{0,126})$/;

/** `Image/JPEG; charset=x` -> `image/jpeg`; undefined when it is not a media type. */
export function normalizeContentType(value: string): string | undefined {
  const type = value.split(';', 1)[0]!.trim().toLowerCase();
  return essence.test(type) ? type : undefined;
}

/** `*` matches everything, `type/*` a family, anything else exactly. */
export function matchesPattern(contentType: string, pattern: string): boolean {
  const p = pattern.toLowerCase();
  if (p === '*' || p === '*/*') return true;
  if (p.endsWith('/*')) return contentType.startsWith(p.slice(0, -1));
  return contentType === p;
}

export function isAllowedContentType(contentType: string, allowed: readonly string[]): boolean {
  return allowed.some((p) => matchesPattern(contentType, p));
}

/** The value of the most specific matching pattern: exact, then `type/*`, then `*`. */
export function valueForContentType<T>(contentType: string, byPattern: Readonly<Record<string, T>>): T | undefined {
  const entries = Object.entries(byPattern);
  const specificity = (p: string) => (p === '*' || p === '*/*' ? 0 : p.endsWith('/*') ? 1 : 2);
  const matching = entries.filter(([p]) => matchesPattern(contentType, p)).sort((a, b) => specificity(b[0]) - specificity(a[0]));
  return matching[0]?.[1];
}

/** Types whose first bytes we recognise; a declared type of this list must match them. */
const signatures: { types: string[]; test: (b: Buffer) => boolean }[] = [
  { types: ['image/jpeg'], test: (b) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { types: ['image/png'], test: (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  { types: ['image/gif'], test: (b) => ['GIF87a', 'GIF89a'].includes(b.subarray(0, 6).toString('latin1')) },
  { types: ['image/webp'], test: (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP' },
  { types: ['application/pdf'], test: (b) => b.subarray(0, 5).toString('latin1') === '%PDF-' },
  // ISO base media (MP4, QuickTime, HEIC, AVIF, M4A): `ftyp` box at offset 4.
  {
    types: ['video/mp4', 'video/quicktime', 'audio/mp4', 'image/heic', 'image/avif'],
    test: (b) => b.subarray(4, 8).toString('latin1') === 'ftyp',
  },
];

/**
 * true when the first bytes do not contradict the declared type. Types we have no
 * signature for pass (their bytes are only ever served as that type, with nosniff).
 */
export function bytesMatchContentType(contentType: string, firstBytes: Buffer): boolean {
  const known = signatures.find((s) => s.types.includes(contentType));
  return known ? known.test(firstBytes) : true;
}

/** Images, audio and video display inline; anything else downloads (never rendered from our origin). */
export function dispositionFor(contentType: string): 'inline' | 'attachment' {
  if (contentType === 'image/svg+xml') return 'attachment';
  return /^(image|audio|video)\//.test(contentType) ? 'inline' : 'attachment';
}

/** Inputs sharp decodes with its prebuilt libvips (HEIC is not among them; SVG is left out on purpose). */
export function canPreview(contentType: string): boolean {
  return ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/tiff'].includes(contentType);
}
