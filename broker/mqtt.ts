/**
 * The embedded Aedes broker with the chat hooks: CONNECT authentication by token, the
 * topic ACL on SUBSCRIBE and PUBLISH, ingest of chat/{user}/{device}/out requests with
 * the PUBACK held until commit, presence and typing. Listeners: TCP, and WebSocket at
 * /mqtt on the HTTP server through `ws` (createWebSocketStream).
 */
import { Aedes, type AedesOptions, type Client, type ConnectPacket, type PublishPacket, type Subscription } from 'aedes';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Duplex } from 'node:stream';
import { aclRule, parseClientId, resolveAcl, type AclFacts, type Principal } from './acl.ts';
import type { AnonymousRule } from './acl-anonymous.ts';
import type { AuthService } from './auth.ts';
import { memoryPersistence, recordSubscribeDecision } from './session-persistence.ts';
import type { ChatService } from './chat.ts';
import type { Metrics } from '../core/metrics.ts';
import type { Logger } from '../core/log.ts';

/** Presence and typing plug in here (broker/presence.ts). */
export interface StatusHooks {
  deviceConnected(user: string, device: string): void;
  deviceDisconnected(user: string, device: string): void;
  /**
   * A typing publish from a member: returns the normalised payload to forward, or
   * undefined to drop it (throttled or lying about `user`).
   */
  typing(user: string, conv: string, payload: Buffer): Buffer | undefined;
  /**
   * The last will of a CONNECT, before aedes stores it: returns the will to keep, or
   * undefined to remove it (presence wills: the server announces presence itself).
   */
  connectWill?(clientId: string, will: NonNullable<ConnectPacket['will']>): ConnectPacket['will'];
}

export interface BrokerDeps {
  auth: AuthService;
  chat: ChatService;
  facts: AclFacts;
  metrics: Metrics;
  log: Logger;
  anonymous: boolean;
  /** Largest MQTT packet accepted; also the WebSocket frame cap. */
  maxPacketBytes?: number;
  status?: StatusHooks;
  aedes?: Partial<AedesOptions>;
  /** Rules for topics outside the chat namespaces (config anonymousRules, broker/acl-anonymous.ts). */
  anonymousRules?: readonly AnonymousRule[];
  /** Rate limit of publishes outside chat/ (typing, anonymous namespace): false drops the publish (broker/limiter.ts). */
  admitPublish?(client: Client, topic: string, bytes: number): boolean;
  /** A refused SUBSCRIBE or PUBLISH, for the audit log (broker/audit.ts). */
  onAclDenied?(client: Client, action: 'publish' | 'subscribe', topic: string, reason?: string): void;
}

// Set on the aedes client at authentication.
const principalKey = Symbol('principal');
type ChatClient = Client & { [principalKey]?: Principal };

export function principalOf(client: Client | null): Principal {
  return (client as ChatClient | null)?.[principalKey] ?? {};
}

/** Where a refused or swallowed publish goes: nobody may subscribe to `$` topics. */
const sinkTopic = '$chat/dropped';

export interface ChatBroker {
  aedes: Aedes;
  /** Publishes a server event (JSON) to a topic. */
  publish(topic: string, payload: Record<string, unknown>, opts?: { qos?: 0 | 1; retain?: boolean }): Promise<void>;
  handleWebSocketUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): Promise<void>;
}

export async function createChatBroker(deps: BrokerDeps): Promise<ChatBroker> {
  const { auth, chat, facts, metrics, log } = deps;
  const aedes = await Aedes.createBroker({
    // clientId is {user}:{device}, each up to 64 characters.
    maxClientsIdLength: 129,
    drainTimeout: 30_000,
    // Sessions, retained and offline queues; guarded (session-persistence.ts).
    persistence: memoryPersistence(),
    ...deps.aedes,

    preConnect: (_client, packet, done) => {
      if (packet.will && deps.status?.connectWill) packet.will = deps.status.connectWill(packet.clientId, packet.will);
      done(null, true);
    },

    authenticate: (client, username, password, done) => {
      const id = parseClientId(client.id);
      if (!username && !password) {
        // Anonymous: a plain MQTT broker outside the chat namespaces, when enabled.
        if (deps.anonymous) {
          (client as ChatClient)[principalKey] = {};
          return done(null, true);
        }
        metrics.authFailures.inc({ kind: 'mqtt' });
        return done(Object.assign(new Error('not authorized'), { returnCode: 5 }), false);
      }
      const refuse = (reason: string) => {
        metrics.authFailures.inc({ kind: 'mqtt' });
        log.info({ event: 'mqtt_auth_failed', clientId: client.id, username, reason }, 'mqtt connect refused');
        done(Object.assign(new Error('not authorized'), { returnCode: 5 }), false);
      };
      if (!id || id.user !== username || !password) return refuse('clientId must be {user}:{device} of the username');
      auth.verify(password.toString('utf8')).then(
        (token) => {
          if (token.user !== id.user || token.device !== id.device) return refuse('token is for another user or device');
          (client as ChatClient)[principalKey] = { user: id.user, device: id.device };
          done(null, true);
        },
        (err: Error) => refuse(err.message),
      );
    },

    authorizeSubscribe: (client, sub: Subscription, done) => {
      const p = principalOf(client);
      const rule = aclRule(p, 'subscribe', sub.topic, deps.anonymous, deps.anonymousRules);
      resolveAcl(rule, p, facts).then(
        ({ allowed, reason }) => {
          recordSubscribeDecision(client, sub.topic, allowed);
          if (allowed) return done(null, sub);
          metrics.aclDenials.inc({ action: 'subscribe' });
          log.info({ event: 'acl_denied', action: 'subscribe', user: p.user, device: p.device, topic: sub.topic, reason }, 'subscribe refused');
          deps.onAclDenied?.(client, 'subscribe', sub.topic, reason);
          // null subscription: SUBACK 0x80 for this topic, the connection stays [MQTT-3.9.3-2].
          done(null, null);
        },
        (err: Error) => done(err, null),
      );
    },

    authorizePublish: (client, packet: PublishPacket, done) => {
      if (!client) return done(null); // server-side publishes
      const p = principalOf(client);
      const topic = packet.topic;
      // presence/{user} is the server's: a will there was already removed at CONNECT
      // (presence.ts connectWill), and a client's own PUBLISH there is refused by the ACL.
      const rule = aclRule(p, 'publish', topic, deps.anonymous, deps.anonymousRules);
      resolveAcl(rule, p, facts).then(
        async ({ allowed, reason }) => {
          if (!allowed) {
            metrics.aclDenials.inc({ action: 'publish' });
            log.info({ event: 'acl_denied', action: 'publish', user: p.user, device: p.device, topic, reason }, 'publish refused: closing connection');
            deps.onAclDenied?.(client, 'publish', topic, reason);
            return done(new Error(`publish to ${topic} refused: ${reason}`));
          }
          if (!topic.startsWith('chat/') && deps.admitPublish && !deps.admitPublish(client, topic, Buffer.byteLength(packet.payload))) {
            // Over the sender's rate limit (typing, anonymous namespace): dropped, never forwarded.
            packet.topic = sinkTopic;
            packet.retain = false;
            return done(null);
          }
          if (topic.startsWith('chat/')) {
            // A request: answered with events; the publish itself goes nowhere. done() -
            // and with it the PUBACK - only after the request's effects are committed.
            const payload = Buffer.from(packet.payload);
            packet.topic = sinkTopic;
            packet.retain = false;
            await chat.handle({ user: p.user!, device: p.device! }, payload);
            return done(null);
          }
          if (topic.startsWith('typing/')) {
            const forward = deps.status?.typing(p.user!, topic.slice('typing/'.length), Buffer.from(packet.payload));
            packet.retain = false;
            if (forward) packet.payload = forward;
            else packet.topic = sinkTopic;
          }
          done(null);
        },
        (err: Error) => done(err),
      );
    },
  });

  aedes.on('client', (client) => {
    metrics.connections.inc();
    const p = principalOf(client);
    if (p.user && p.device) deps.status?.deviceConnected(p.user, p.device);
  });
  aedes.on('clientDisconnect', (client) => {
    metrics.connections.dec();
    const p = principalOf(client);
    if (p.user && p.device) deps.status?.deviceDisconnected(p.user, p.device);
  });
  aedes.on('clientError', (client, err) => {
    log.debug({ clientId: client?.id, err: err.message }, 'client error');
  });
  aedes.on('connectionError', (client, err) => {
    log.debug({ clientId: client?.id, err: err.message }, 'connection error');
  });

  // One WebSocket frame carries at most one MQTT packet's worth (the TCP path has the same cap).
  const wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxPacketBytes ?? 1024 * 1024 });
  wss.on('connection', (socket, req) => {
    const stream = createWebSocketStream(socket);
    stream.on('error', () => socket.terminate());
    aedes.handle(stream, req);
  });

  function publish(topic: string, payload: Record<string, unknown>, opts: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      aedes.publish(
        {
          cmd: 'publish',
          topic,
          payload: Buffer.from(JSON.stringify(payload)),
          qos: opts.qos ?? 1,
          retain: opts.retain ?? false,
          dup: false,
        },
        (err?: Error) => (err ? reject(err) : resolve()),
      );
    });
  }

  return {
    aedes,
    publish,
    handleWebSocketUpgrade(req, socket, head) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}
