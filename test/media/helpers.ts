/**
 * Real services for the media tests: s3rver on loopback on an ephemeral port with a temp
 * directory, and the local store behind a real fastify server on an ephemeral port.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import S3rver from 's3rver';
import type { Clock } from '../../core/clock.ts';
import { LocalObjectStore } from '../../workers/media/local-store.ts';
import { registerBlobRoutes } from '../../workers/media/routes.ts';

// The SDK warns once per process that releases after January 2027 need Node 22; noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** s3rver's built-in account (it checks the key id exists, not the signature). */
export const s3rverCredentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface RunningS3rver {
  endpoint: string;
  close(): Promise<void>;
}

export async function startS3rver(buckets: string[]): Promise<RunningS3rver> {
  const directory = await mkdtemp(join(tmpdir(), 'media-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export interface LocalStoreServer {
  store: LocalObjectStore;
  app: FastifyInstance;
  origin: string;
  root: string;
  close(): Promise<void>;
}

export async function startLocalStore(clock: Clock, restoreDelaySeconds = 0): Promise<LocalStoreServer> {
  const root = await mkdtemp(join(tmpdir(), 'media-local-'));
  const store = new LocalObjectStore({ root, signingSecret: 'test-secret-test-secret-test-secret!', restoreDelaySeconds, clock });
  await store.ensureDirs();
  const app = Fastify();
  registerBlobRoutes(app, store);
  const origin = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    store,
    app,
    origin,
    root,
    async close() {
      await app.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Resolves a signed URL that may be relative to the API origin (local driver). */
export function absolute(url: string, origin: string): string {
  return new URL(url, origin).toString();
}
