/**
 * The HTTP API (DESIGN section 7) on fastify: auth, device tokens, health, readiness and
 * metrics. Every error leaves as `{"error":{"code","message"}}` through one handler.
 */
import Fastify, { type FastifyInstance, type FastifyError } from 'fastify';
import { ChatError, httpStatusOf, toChatError } from '../core/errors.ts';
import type { AuthService } from './auth.ts';
import type { LoginThrottle } from './login-throttle.ts';
import type { Metrics } from '../core/metrics.ts';
import type { Logger } from '../core/log.ts';

export interface HttpDeps {
  auth: AuthService;
  metrics: Metrics;
  log: Logger;
  maxBodyBytes: number;
  ready: () => Promise<boolean>;
  /** Login throttling per user name and address (broker/login-throttle.ts). */
  loginThrottle?: LoginThrottle;
}

type Body = Record<string, unknown>;

function body(req: { body: unknown }): Body {
  const b = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new ChatError('bad_request', 'body must be a JSON object');
  return b as Body;
}

export function errorBody(err: ChatError): { error: { code: string; message: string } } {
  return { error: { code: err.code, message: err.message } };
}

export function createHttpApp(deps: HttpDeps): FastifyInstance {
  // forceCloseConnections: shutdown must not wait on idle keep-alive or half-read responses.
  const app = Fastify({ logger: false, bodyLimit: deps.maxBodyBytes, forceCloseConnections: true });
  const { auth, metrics } = deps;

  app.setErrorHandler((err: FastifyError | ChatError, req, reply) => {
    let chatError: ChatError;
    if (err instanceof ChatError) chatError = err;
    else if ((err as FastifyError).statusCode === 413) chatError = new ChatError('too_large', 'request body too large');
    else if ((err as FastifyError).statusCode && (err as FastifyError).statusCode! < 500) {
      chatError = new ChatError('bad_request', err.message, { status: (err as FastifyError).statusCode });
    } else {
      deps.log.error({ err, url: req.url }, 'http handler failed');
      chatError = toChatError(err);
    }
    if (chatError.details.retryAfterMs !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(chatError.details.retryAfterMs / 1000))));
    void reply.status(httpStatusOf(chatError)).send(errorBody(chatError));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(errorBody(new ChatError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));
  });

  app.post('/v1/auth/register', async (req, reply) => {
    const b = body(req);
    try {
      const bundle = await auth.register(b.user, b.password, b.device);
      return reply.status(201).send(bundle);
    } catch (err) {
      metrics.authFailures.inc({ kind: 'register' });
      throw err;
    }
  });
  app.post('/v1/auth/login', async (req) => {
    const b = body(req);
    await deps.loginThrottle?.check(b.user, req.ip);
    try {
      const bundle = await auth.login(b.user, b.password, b.device);
      await deps.loginThrottle?.succeeded(b.user);
      return bundle;
    } catch (err) {
      metrics.authFailures.inc({ kind: 'login' });
      if (err instanceof ChatError && httpStatusOf(err) === 401) await deps.loginThrottle?.failed(b.user, req.ip, err.message);
      throw err;
    }
  });
  app.post('/v1/auth/refresh', async (req) => {
    try {
      return await auth.refresh(body(req).refresh_token);
    } catch (err) {
      metrics.authFailures.inc({ kind: 'refresh' });
      throw err;
    }
  });
  app.post('/v1/devices', async (req, reply) => {
    const who = await auth.authenticateBearer(req.headers.authorization);
    const b = body(req);
    return reply.status(201).send(await auth.createDeviceToken(who.user, b.device, b.ttl_days));
  });
  app.delete<{ Params: { id: string } }>('/v1/devices/:id', async (req, reply) => {
    const who = await auth.authenticateBearer(req.headers.authorization);
    await auth.revokeDevice(who.user, req.params.id);
    return reply.status(204).send();
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ok = await deps.ready().catch(() => false);
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready' });
  });
  app.get('/metrics', async (_req, reply) => {
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return app;
}
