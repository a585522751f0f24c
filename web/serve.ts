/**
 * Serves the built web client (web/dist, made by web/build.ts) at `/` of the platform's
 * HTTP app, next to the API. Same origin as the API and `/mqtt`, so the page needs no
 * CORS and no configuration: it talks to the server it came from.
 *
 * Files are looked up per request (@fastify/static wildcard mode), so a build made after
 * the server started is served at once; a path that is not a file falls through to the
 * API's JSON 404. index.html and the assets are revalidated on every load (ETag), so a
 * new build is never hidden behind a cache.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

export const webDistDir = join(dirname(fileURLToPath(import.meta.url)), 'dist');

/**
 * The page's Content-Security-Policy: scripts and styles only from our origin; images from
 * us, data: (media thumbnails) and blob: (downloaded media); connections to us, to our
 * WebSocket, and to wherever signed media URLs point (S3 or a compatible store).
 */
export const WEB_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  // MQTT.js runs its keepalive timer in a blob: worker, which background tabs do not throttle.
  "worker-src 'self' blob:",
  "connect-src 'self' ws: wss: http: https:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export function registerWebClient(app: FastifyInstance, options: { root?: string; log?: { warn(msg: string): void } } = {}): void {
  const root = options.root ?? webDistDir;
  if (!existsSync(join(root, 'index.html'))) {
    options.log?.warn(`web client not built (${root}/index.html is missing): run npm run build:web`);
  }
  void app.register(fastifyStatic, {
    root,
    prefix: '/',
    index: ['index.html'],
    wildcard: true,
    decorateReply: false,
    // The API's own JSON 404 for anything that is not a file here.
    serveDotFiles: false,
    cacheControl: false,
    setHeaders(reply, path) {
      reply.header('cache-control', 'no-cache');
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      if (path.endsWith('.html')) {
        reply.header('content-security-policy', WEB_CSP);
        reply.header('x-frame-options', 'DENY');
      }
    },
  });
}
