/**
 * Message and request ids: 26 characters, time-ordered like a ULID (48-bit millisecond time
 * then 80 random bits, Crockford base32), so that ids sort by creation and never collide
 * across devices. Uses the Web Crypto API present in Node 20 and every browser.
 */

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function newId(now: number = Date.now()): string {
  let time = '';
  let remaining = Math.max(0, Math.floor(now));
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[remaining % 32]! + time;
    remaining = Math.floor(remaining / 32);
  }
  const random = new Uint8Array(16);
  globalThis.crypto.getRandomValues(random);
  let suffix = '';
  for (const byte of random) suffix += ALPHABET[byte % 32]!;
  return time + suffix;
}
