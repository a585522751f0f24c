/**
 * The one object-storage interface of media (STYLE 1, 4). Two implementations: the local
 * directory (embedded default, local-store.ts) and S3 or any S3-compatible store
 * (s3-store.ts). test/media/object-store.contract.ts runs the same suite against both.
 *
 * Semantics every implementation keeps:
 * - A key is a logical name (`blobs/ab/ab12..`, `uploads/m_..`, `thumbs/ab/ab12..`); where the
 *   bytes live (folder, bucket, storage class) is the object's tier, not part of the key.
 *   Keys match `keyPattern`; anything else is refused before any I/O.
 * - `put` and `copy` write the destination in the hot tier and replace an object with the
 *   same key in any tier, so a key names at most one object.
 * - A missing object: `head` and `tierState` return undefined, `get`, `copy`, `setTier` and
 *   `restore` throw ObjectNotFoundError, `delete` succeeds (deleting is idempotent).
 * - Cold is an archive tier: its objects are not readable (get throws ObjectArchivedError,
 *   signed GET URLs are refused by the store) until `restore` completes; a restored object
 *   stays readable for the given days, then needs restoring again. Hot and warm are always
 *   readable. `setTier` out of cold needs a readable (restored) object.
 * - Signed URLs carry their own authorization and expiry: whoever holds one may do that
 *   one request until it expires. A URL is absolute (S3) or relative to the API origin (local).
 */
import type { Readable } from 'node:stream';
import type { Tier } from './config.ts';

export type { Tier } from './config.ts';

export const keyPattern = /^(?:uploads|blobs|thumbs)\/[A-Za-z0-9][A-Za-z0-9_./-]{0,200}$/;

export interface ObjectInfo {
  key: string;
  size: number;
  tier: Tier;
}

export interface TierState {
  tier: Tier;
  /** Bytes can be read now (signed GET URL, get). */
  readable: boolean;
  /** An archive retrieval is in progress. */
  restoring: boolean;
  /** When a restored copy of a cold object stops being readable (ms). */
  restoredUntil?: number;
}

export interface SignedUrl {
  url: string;
  /** Unix ms after which the store refuses the URL. */
  expiresAt: number;
  /** Headers the request must carry exactly as given (they are part of the signature). */
  headers: Record<string, string>;
}

export interface PutOptions {
  contentType: string;
  /** Refuse (ObjectTooLargeError) and store nothing when the body is longer. */
  maxBytes?: number;
}

export interface SignedPutOptions {
  contentType: string;
  /** Exact byte length the upload must have. */
  size: number;
  expiresInSeconds: number;
}

export interface SignedGetOptions {
  expiresInSeconds: number;
  /** Content-Type and Content-Disposition the download is served with. */
  contentType?: string;
  disposition?: 'inline' | 'attachment';
  /** Where the caller's records say the object is; saves a lookup in stores where the tier is a location. */
  tier?: Tier;
}

export interface ObjectStore {
  readonly kind: 'local' | 's3';
  put(key: string, body: Buffer | Readable, options: PutOptions): Promise<void>;
  head(key: string): Promise<ObjectInfo | undefined>;
  get(key: string): Promise<Readable>;
  copy(sourceKey: string, destinationKey: string, options: { contentType: string }): Promise<void>;
  delete(key: string): Promise<void>;
  signedPutUrl(key: string, options: SignedPutOptions): Promise<SignedUrl>;
  signedGetUrl(key: string, options: SignedGetOptions): Promise<SignedUrl>;
  setTier(key: string, tier: Tier): Promise<void>;
  tierState(key: string): Promise<TierState | undefined>;
  /** Starts (or completes at once) an archive retrieval; a no-op for readable objects. */
  restore(key: string, options: { days: number }): Promise<TierState>;
  close(): Promise<void>;
}

export class ObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`no object ${key}`);
    this.name = 'ObjectNotFoundError';
  }
}

export class ObjectArchivedError extends Error {
  constructor(readonly key: string) {
    super(`object ${key} is archived (cold) and must be restored first`);
    this.name = 'ObjectArchivedError';
  }
}

export class ObjectTooLargeError extends Error {
  constructor(readonly key: string, readonly maxBytes: number) {
    super(`object ${key} is larger than ${maxBytes} bytes`);
    this.name = 'ObjectTooLargeError';
  }
}

export function assertKey(key: string): void {
  if (!keyPattern.test(key) || key.includes('..') || key.includes('//') || key.endsWith('/')) {
    throw new Error(`invalid object key ${JSON.stringify(key)}`);
  }
}

/** The blob key of some bytes: derived from their sha256 (dedupe), fanned out by prefix. */
export function blobKey(sha256: string): string {
  return `blobs/${sha256.slice(0, 2)}/${sha256}`;
}

export function thumbnailKey(sha256: string): string {
  return `thumbs/${sha256.slice(0, 2)}/${sha256}`;
}

export function uploadKey(mediaId: string): string {
  return `uploads/${mediaId}`;
}

/** Colder first is a larger rank. */
export function tierRank(tier: Tier): number {
  return tier === 'hot' ? 0 : tier === 'warm' ? 1 : 2;
}
