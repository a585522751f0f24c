/**
 * HTTP routes of media (DESIGN section 7), as fastify plugins the broker's app registers:
 *
 *   POST /v1/media                 bearer  {conv, content_type, size, sha256} -> 201 ticket
 *   POST /v1/media/:id/complete    bearer  {} -> 200 record | 422 rejected (bytes removed)
 *   GET  /v1/media/:id             bearer  302 Location | 202 Retry-After | 403 | 404 | 410
 *   GET  /v1/media/:id/info        bearer  200 record (with preview), tombstones included
 *   PUT  /v1/blobs/<key>?exp&len&ct&sig     local driver: signed upload
 *   GET  /v1/blobs/<key>?exp&ct&cd&sig      local driver: signed download (Range supported)
 *
 * Self-contained: the plugins have their own error handler that answers
 * `{"error":{"code","message"}}` with core/errors.ts httpStatusOf, the same mapping as the
 * broker's, so they behave the same mounted anywhere.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ChatError, httpStatusOf, toChatError } from '../../core/errors.ts';
import { LocalObjectStore } from './local-store.ts';
import { ObjectArchivedError, ObjectNotFoundError, ObjectTooLargeError, assertKey } from './object-store.ts';
import { downloadJson, parseUploadRequest, type MediaService } from './service.ts';

export interface MediaRouteDeps {
  media: MediaService;
  /** Maps an Authorization header to the caller; throws a ChatError (status 401) when it is not valid. */
  authenticate: (authorizationHeader: string | undefined) => Promise<{ user: string; device: string }>;
}

export function registerMediaRoutes(app: FastifyInstance, deps: MediaRouteDeps): void {
  app.register(async (scope) => {
    scope.setErrorHandler(replyWithError);
    // POST .../complete carries `{}` or nothing; an empty JSON body is not an error here.
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') return done(null, {});
      try {
        done(null, JSON.parse(text) as unknown);
      } catch {
        done(new ChatError('bad_request', 'body is not valid JSON'), undefined);
      }
    });

    scope.post('/v1/media', async (request, reply) => {
      const { user } = await caller(deps, request);
      const ticket = await deps.media.createUpload(user, parseUploadRequest(request.body));
      return reply.code(201).send(ticket);
    });

    scope.post<{ Params: { id: string } }>('/v1/media/:id/complete', async (request) => {
      const { user } = await caller(deps, request);
      return deps.media.complete(user, request.params.id);
    });

    scope.get<{ Params: { id: string } }>('/v1/media/:id', async (request, reply) => {
      const { user } = await caller(deps, request);
      const download = await deps.media.get(user, request.params.id);
      reply.header('cache-control', 'no-store');
      if (download.kind === 'restoring') {
        return reply
          .code(202)
          .header('retry-after', String(download.retryAfterSeconds))
          .send(downloadJson(download));
      }
      return reply.code(302).header('location', download.url).send();
    });

    scope.get<{ Params: { id: string } }>('/v1/media/:id/info', async (request) => {
      const { user } = await caller(deps, request);
      return deps.media.info(user, request.params.id);
    });
  });

  if (deps.media.objects instanceof LocalObjectStore) registerBlobRoutes(app, deps.media.objects);
}

/** The local driver's signed upload and download routes (S3 serves its own signed URLs). */
export function registerBlobRoutes(app: FastifyInstance, store: LocalObjectStore): void {
  app.register(async (scope) => {
    scope.setErrorHandler(replyWithError);
    // Uploads are raw bytes of any type, streamed to disk: no body parsing in this scope.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
    const route = `${store.urlPrefix}/*`;

    scope.put<{ Params: { '*': string }; Querystring: Record<string, string | undefined> }>(route, async (request, reply) => {
      const key = checkedKey(request.params['*']);
      if (!key.startsWith('uploads/')) throw new ChatError('forbidden', 'only uploads are written by URL');
      const signed = verified(store, 'PUT', key, request.query);
      // As S3 does for signed headers: another content type or length is another request.
      if (request.headers['content-type'] !== signed.contentType) throw new ChatError('forbidden', 'content-type differs from the signed one');
      const declaredLength = request.headers['content-length'];
      if (declaredLength !== undefined && Number(declaredLength) !== signed.size) {
        throw new ChatError('forbidden', 'content-length differs from the signed one');
      }
      try {
        await store.put(key, request.raw, { contentType: signed.contentType!, maxBytes: signed.size });
      } catch (err) {
        if (err instanceof ObjectTooLargeError) throw new ChatError('too_large', `the upload is longer than the signed ${signed.size} bytes`);
        throw err;
      }
      return reply.code(200).send();
    });

    scope.get<{ Params: { '*': string }; Querystring: Record<string, string | undefined> }>(route, async (request, reply) => {
      const key = checkedKey(request.params['*']);
      const signed = verified(store, 'GET', key, request.query);
      let opened;
      const size = (await store.head(key))?.size;
      const range = size === undefined ? undefined : parseRange(request.headers.range, size);
      if (range === 'unsatisfiable') {
        return reply.code(416).header('content-range', `bytes */${size}`).send();
      }
      try {
        opened = await store.openRead(key, range);
      } catch (err) {
        if (err instanceof ObjectNotFoundError) throw new ChatError('not_found', 'no such object');
        if (err instanceof ObjectArchivedError) throw new ChatError('forbidden', 'the object is archived; it is being restored');
        throw err;
      }
      const remaining = Math.max(0, Math.floor((signed.expiresAt - store.clock.now()) / 1000));
      reply
        .header('content-type', signed.contentType ?? 'application/octet-stream')
        .header('content-disposition', signed.disposition ?? 'attachment')
        .header('accept-ranges', 'bytes')
        // User content on the API origin: never sniffed, never scripted.
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox")
        .header('cache-control', `private, max-age=${remaining}`);
      if (range) {
        reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${opened.size}`).header('content-length', String(range.end - range.start + 1));
      } else {
        reply.code(200).header('content-length', String(opened.size));
      }
      return reply.send(opened.stream);
    });
  });
}

/** The authenticated caller; an authenticator that fails with anything but a ChatError means 401. */
async function caller(deps: MediaRouteDeps, request: FastifyRequest): Promise<{ user: string; device: string }> {
  try {
    return await deps.authenticate(request.headers.authorization);
  } catch (err) {
    if (err instanceof ChatError) throw err;
    throw new ChatError('forbidden', 'invalid or missing bearer token', { status: 401 });
  }
}

function checkedKey(raw: string): string {
  try {
    assertKey(raw);
  } catch {
    throw new ChatError('not_found', 'no such object');
  }
  return raw;
}

function verified(store: LocalObjectStore, method: 'GET' | 'PUT', key: string, query: Record<string, string | undefined>) {
  const check = store.verify(method, key, query);
  if (!check.ok) throw new ChatError('forbidden', check.reason === 'expired' ? 'the signed URL has expired' : 'the signature does not match');
  return check.request;
}

/** One `bytes=a-b` range (what players and resumable downloads send); others get the whole object. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return 'unsatisfiable';
  return { start, end };
}

function replyWithError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  let chatError: ChatError;
  if (error instanceof ChatError) chatError = error;
  else if (typeof (error as FastifyError).statusCode === 'number' && (error as FastifyError).statusCode! < 500) {
    // fastify's own refusals (bad JSON, body limit, unsupported type).
    const status = (error as FastifyError).statusCode!;
    chatError = new ChatError(status === 413 ? 'too_large' : 'bad_request', error.message, { status });
  } else {
    request.log.error({ err: error }, 'media route failed');
    chatError = toChatError(error);
  }
  const status = httpStatusOf(chatError);
  if (chatError.details.retryAfterMs !== undefined) reply.header('retry-after', String(Math.ceil(chatError.details.retryAfterMs / 1000)));
  void reply.code(status).send({ error: { code: chatError.code, message: chatError.message } });
}
