/**
 * Composition of one process: store, auth, chat service, delivery, broker, HTTP and the
 * listeners. `startPlatform` is what `npm start` runs and what tests start in-process.
 */
import { createServer as createTcpServer, type Server as TcpServer, type AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { readFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { loadConfig, type Config } from '../config/index.ts';
import { openDb, type Db } from '../core/db.ts';
import { migrate } from '../core/migrate.ts';
import { ChatStore } from '../core/store.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { createMetrics, type Metrics } from '../core/metrics.ts';
import { Gauge } from 'prom-client';
import type { DeliveryQueue } from '../workers/delivery-queue.ts';
import { createDeliveryQueue, withChaos } from '../workers/queues.ts';
import { Deliverer, type RoutePublish } from '../workers/deliverer.ts';
import { redisRouter } from '../workers/router.ts';
import { ClusterNode, MembersBus } from './cluster.ts';
import { openObjectStore, MediaService, registerMediaRoutes, TieringWorker, createMediaMetrics, downloadJson, parseUploadRequest } from '../workers/media/index.ts';
import { AuthService, loadOrCreateSecret } from './auth.ts';
import { ChatService, type ChatHooks } from './chat.ts';
import { createHttpApp } from './http.ts';
import { registerWebClient } from '../web/serve.ts';
import { createChatBroker, type ChatBroker, type StatusHooks } from './mqtt.ts';
import { Hardening, checkListeners } from './hardening.ts';
import { PresenceService, createPresenceStore, defaultNodeId } from './presence.ts';

export interface Platform {
  config: Config;
  db: Db;
  store: ChatStore;
  auth: AuthService;
  chat: ChatService;
  broker: ChatBroker;
  metrics: Metrics;
  log: Logger;
  queue: DeliveryQueue;
  /** Bound addresses (ports are the real ones when 0 was asked for). */
  mqttPort: number;
  httpPort: number;
  mqttsPort?: number;
  httpsPort?: number;
  urls: { mqtt: string; ws: string; http: string; mqtts?: string; wss?: string };
  close(): Promise<void>;
}

export interface PlatformOptions {
  config?: Partial<Config>;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  logger?: Logger;
}

function listen(server: TcpServer | import('node:http').Server, port: number, host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolvePort((server.address() as AddressInfo).port);
    });
  });
}

/** Gauges read at scrape time: queue depth, and conversations by kind and mode (cached 30 s). */
function watchGauges(metrics: Metrics, store: ChatStore, queue: DeliveryQueue, clock: Clock): void {
  let countedAt = Number.NEGATIVE_INFINITY;
  new Gauge({
    name: 'chat_delivery_queue_depth',
    help: 'Delivery jobs waiting (and, on Redis, being handled)',
    registers: [metrics.registry],
    async collect() {
      this.set(await queue.depth().catch(() => 0));
    },
  });
  new Gauge({
    name: 'chat_conversations',
    help: 'Conversations by kind and fan-out mode (read from the store at scrape, cached 30 s)',
    labelNames: ['kind', 'fanout'],
    registers: [metrics.registry],
    async collect() {
      if (clock.now() - countedAt < 30_000) return;
      countedAt = clock.now();
      const rows = await store.countConversations().catch(() => []);
      this.reset();
      for (const r of rows) this.set({ kind: r.kind, fanout: r.fanout }, r.n);
    },
  });
}

function displayHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

export async function startPlatform(options: PlatformOptions = {}): Promise<Platform> {
  const config = loadConfig(options.env ?? process.env, options.config ?? {});
  checkListeners(config);
  const clock = options.clock ?? systemClock;
  const log = options.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });

  const db = await openDb({ databaseUrl: config.databaseUrl, pgliteDir: config.databaseUrl ? undefined : join(dataDir, 'pglite') });
  const applied = await migrate(db);
  if (applied.length) log.info({ applied }, 'migrations applied');
  const store = new ChatStore(db);
  const secret = await loadOrCreateSecret(config.jwtSecret, dataDir);
  const auth = new AuthService(store, secret, config, clock);
  // Rate limits, MQTT guards, login throttling, audit log (hardening.ts, docs/hardening.md).
  const hardening = new Hardening({ config, clock, log, metrics });

  const nodeId = config.nodeId ?? defaultNodeId();
  const queue: DeliveryQueue = createDeliveryQueue({ config, clock, metrics, log, consumer: nodeId });
  // Cluster mode: Redis-backed broker state and pub/sub, routed delivery (cluster.ts).
  const cluster = config.redisUrl ? new ClusterNode({ redisUrl: config.redisUrl, prefix: config.redisPrefix, nodeId, clock, log }) : undefined;
  const hooks: ChatHooks = {};
  // The broker and the chat service need each other: publish goes through a late binding.
  let broker: ChatBroker | undefined;
  const publish = (topic: string, event: Record<string, unknown>, opts?: { qos?: 0 | 1; retain?: boolean }) => {
    if (!broker) return Promise.reject(new Error('broker not started'));
    return broker.publish(topic, event, opts);
  };
  const chat = new ChatService(store, queue, publish, clock, config, metrics, log, hooks);
  // Cluster bus: member/block cache invalidations, and revocations that must close a
  // device's connections on whichever broker holds them.
  let onRevokedHere: (user: string, device: string, reason: string) => void = () => {};
  const membersBus = config.redisUrl
    ? await MembersBus.open(config.redisUrl, config.redisPrefix, (key) => {
        const revoked = /^revoke:([^:]+):([^:]+):(.*)$/.exec(key);
        if (revoked) onRevokedHere(revoked[1]!, revoked[2]!, revoked[3]!);
        else chat.members.invalidate(key);
      }, log)
    : undefined;
  if (membersBus) hooks.membersChanged = (conv) => membersBus.changed(conv);
  const facts = {
    isMember: (user: string, conv: string) => chat.members.isMember(conv, user),
    sharesConversation: (a: string, b: string) => store.sharesConversation(a, b),
  };
  const presenceStore = createPresenceStore({ redisUrl: config.redisUrl, redisPrefix: config.redisPrefix, log });
  const presence = new PresenceService({ nodeId, store, presenceStore, publish, clock, metrics, log, debounceMs: config.presenceDebounceMs, typingMinIntervalMs: config.typingMinIntervalMs });
  hooks.rpc = presence.rpcHooks(hooks.rpc);
  hooks.admit = hardening.admit;
  hooks.rpc = hardening.adminRpcs(hooks.rpc);
  // Media (workers/media): attachments, the media.* RPCs, the HTTP routes and tiering.
  const objects = await openObjectStore(config, clock);
  const media = new MediaService({ db, chat: store, objects, config: config.media, clock, log });
  hooks.checkAttachable = (user, conv, ids) => media.checkAttachable(user, conv, ids);
  hooks.rpc = {
    ...hooks.rpc,
    'media.upload': async (ctx, params) => media.createUpload(ctx.who.user, parseUploadRequest(params)),
    'media.get': async (ctx, params) => downloadJson(await media.get(ctx.who.user, String(params.id ?? params.media ?? ''))),
  };
  // Tiering runs once per cluster (an advisory lock), so every 'all' node may schedule it.
  const tiering = config.role === 'all' ? new TieringWorker({ db, objects, config: config.media, clock, log, metrics: createMediaMetrics(metrics.registry) }) : undefined;
  tiering?.start();
  const status: StatusHooks = presence;
  broker = await createChatBroker({ auth, chat, facts, metrics, log, anonymous: config.mqttAnonymous, status, maxPacketBytes: hardening.maxPacketBytes, ...hardening.brokerDeps, aedes: { ...hardening.aedesOptions, ...cluster?.aedesOptions } });
  await cluster?.attach(broker.aedes);
  hardening.attach(broker.aedes);
  // Revoked tokens end live connections here; in cluster mode a broadcast must call this on every broker.
  onRevokedHere = (user, device, reason) => void hardening.deviceRevoked(user, device, reason);
  auth.onDeviceRevoked = (user, device, reason) => {
    onRevokedHere(user, device, reason);
    membersBus?.changed(`revoke:${user}:${device}:${reason}`);
  };
  const route: RoutePublish = cluster
    ? redisRouter(cluster.redis, config.redisPrefix, { nodesOf: async (u) => [...new Set((await presenceStore.devices(u)).map((d) => d.node))] }, cluster.registry)
    : async (topics, event) => {
        await Promise.all(topics.map((t) => broker!.publish(t, event)));
      };
  const deliverer = new Deliverer(chat.members, route, metrics);
  watchGauges(metrics, store, queue, clock);
  // role 'broker' (cluster): delivery is the workers' job (npm run worker).
  if (config.role === 'all') queue.start(withChaos(config, (job) => deliverer.topicsOf(job), (job) => deliverer.deliver(job)));

  const http = createHttpApp({
    auth,
    metrics,
    log,
    maxBodyBytes: Math.max(config.maxPayloadBytes, 1024 * 1024),
    loginThrottle: hardening.loginThrottle,
    ready: async () => {
      await db.query('select 1');
      return !broker!.aedes.closed;
    },
  });
  registerMediaRoutes(http, { media, authenticate: (header) => auth.authenticateBearer(header) });
  // The browser client (web/, built by npm run build:web) at `/`, same origin as the API and /mqtt.
  registerWebClient(http, { log });
  await http.ready();
  const upgrade = (req: import('node:http').IncomingMessage, socket: Duplex, head: Buffer) => {
    if ((req.url ?? '').split('?')[0] === '/mqtt') broker!.handleWebSocketUpgrade(req, socket, head);
    else socket.destroy();
  };
  http.server.on('upgrade', upgrade);

  const tcp = createTcpServer((socket) => broker!.aedes.handle(socket));
  const servers: { close(cb: () => void): void }[] = [tcp, http.server];
  // plainListeners=false: only the TLS listeners below; the plain ports read 0.
  const mqttPort = config.plainListeners ? await listen(tcp, config.mqttPort, config.host) : 0;
  const httpPort = config.plainListeners ? await listen(http.server, config.httpPort, config.host) : 0;
  const host = displayHost(config.host);
  const urls: Platform['urls'] = { mqtt: `mqtt://${host}:${mqttPort}`, ws: `ws://${host}:${httpPort}/mqtt`, http: `http://${host}:${httpPort}` };

  let mqttsPort: number | undefined;
  let httpsPort: number | undefined;
  if (config.tlsCert && config.tlsKey) {
    const tlsOptions = { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) };
    const mqtts = createTlsServer(tlsOptions, (socket) => broker!.aedes.handle(socket));
    mqttsPort = await listen(mqtts as unknown as TcpServer, config.mqttsPort ?? 8883, config.host);
    const { createServer: createHttpsServer } = await import('node:https');
    const https = createHttpsServer(tlsOptions, (req, res) => http.routing(req, res));
    https.on('upgrade', upgrade);
    httpsPort = await listen(https, config.httpsPort ?? 8443, config.host);
    servers.push(mqtts, https);
    urls.mqtts = `mqtts://${host}:${mqttsPort}`;
    urls.wss = `wss://${host}:${httpsPort}/mqtt`;
  }

  let closing: Promise<void> | undefined;
  const platform: Platform = {
    config, db, store, auth, chat, broker, metrics, log, queue,
    mqttPort, httpPort, mqttsPort, httpsPort, urls,
    close() {
      closing ??= (async () => {
        // Stop accepting, drain deliveries, close sessions, close the store.
        for (const s of servers) s.close(() => {});
        if (config.role === 'all') await queue.drain(5_000);
        await queue.close();
        await membersBus?.close();
        await presence.close();
        await broker!.close();
        await hardening.close();
        await cluster?.close();
        await http.close().catch(() => {});
        await tiering?.stop();
        await objects.close();
        await db.close();
      })();
      return closing;
    },
  };
  return platform;
}
