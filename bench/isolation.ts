/**
 * Isolation benchmark (issue 9, docs/hardening.md): the send -> ack and send -> delivery
 * latency of well-behaved chat clients, without and with abusers, on loopback:
 *
 *   baseline      the platform with its default protections, well-behaved clients only
 *   protected     the same, plus the abusers
 *   unprotected   the abusers against the settings before hardening (no limits, no
 *                 slow-consumer bound, aedes concurrency 100, drainTimeout 30 s)
 *
 * Abusers (--abusers; a child process of their own, so that they do not share the
 * measuring event loop):
 *   flood       a chat user pipelining sends at full speed, reconnecting whenever cut off
 *   sloth       an anonymous subscriber that stops reading while a pump publishes 32 KB
 *               QoS 0 messages to it, 100 a second (the broker runs with MQTT_ANONYMOUS)
 *   groupsloth  a member of a busy chat group that stops reading; good0 (measured) is a
 *               member too, and its latency for the group's messages is reported
 *
 *   npx tsx bench/isolation.ts [--seconds 15] [--pairs 4] [--rate 20] [--phases baseline,protected,unprotected] [--abusers flood,groupsloth]
 *
 * The broker is `broker/main.ts` in a child process on PGlite (DATABASE_URL set: on that
 * Postgres, one fresh database per phase). Bounded: each phase lasts --seconds plus 2 s
 * of warm-up; a send that gets no ack within 10 s counts as 10 s (shown as ">=").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sendTimeoutMs = 10_000;

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    pairs: { type: 'string', default: '4' },
    rate: { type: 'string', default: '20' },
    phases: { type: 'string', default: 'baseline,protected,unprotected' },
    abusers: { type: 'string', default: 'flood,groupsloth' },
    // internal: run as the abuser process
    abuse: { type: 'boolean', default: false },
    mqtt: { type: 'string' },
    http: { type: 'string' },
  },
});

// ---- helpers ---------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function account(http: string, user: string): Promise<string> {
  const body = JSON.stringify({ user, password: 'bench-password-1' });
  const headers = { 'content-type': 'application/json' };
  let r = await fetch(`${http}/v1/auth/register`, { method: 'POST', headers, body });
  if (r.status === 409) r = await fetch(`${http}/v1/auth/login`, { method: 'POST', headers, body });
  if (!r.ok) throw new Error(`account ${user}: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { token: string }).token;
}

function device(url: string, user: string, token: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId: `${user}:default`, username: user, password: token, clean: true, reconnectPeriod: 0, connectTimeout: 10_000 });
}

/** MQTT 3.1.1 CONNECT and SUBSCRIBE, by hand: the slow consumer is a bare socket. */
function str(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}
function frame(first: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}

function percentile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

// ---- the abuser process -----------------------------------------------------------

async function abuse(mqttUrl: string, http: string): Promise<void> {
  const { hostname, port } = new URL(mqttUrl);
  const kinds = (values.abusers ?? 'flood,groupsloth').split(',');
  let stop = false;
  let pumped = 0;
  process.on('message', () => {
    stop = true;
    process.send?.({ pumped });
  });
  process.on('SIGTERM', () => process.exit(0));

  /** A bare socket that connects, subscribes, then never reads again. */
  const stalledSubscriber = async (connect: Buffer, topic: string) => {
    const sock: Socket = netConnect(Number(port), hostname);
    sock.on('error', () => {});
    sock.write(connect);
    sock.write(frame(0x82, Buffer.concat([Buffer.from([0, 1]), str(topic), Buffer.from([1])])));
    await sleep(200);
    sock.pause();
    while (!stop) await sleep(100);
    sock.destroy();
  };

  // sloth: an anonymous subscriber of bulk/# that stops reading, while an anonymous pump
  // publishes 32 KB QoS 0 messages there, 100 a second. Each delivery waiting on the
  // sloth holds one of the broker's routing slots (aedes #1060).
  const sloth = async () => {
    const pump = await mqtt.connectAsync(mqttUrl, { clientId: 'bulk-pump', reconnectPeriod: 0 });
    const stalled = stalledSubscriber(frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 0]), str('sloth')])), 'bulk/#');
    await sleep(300);
    const body = Buffer.alloc(32 * 1024, 'x');
    while (!stop) {
      for (let i = 0; i < 10; i++) pump.publish('bulk/data', body, { qos: 0 });
      await sleep(100);
    }
    pump.end(true);
    await stalled;
  };

  // groupsloth: a member of a busy chat group that stops reading; the pump posts 32 KB
  // messages there, 40 a second (within its limits). good0, a measured client, is a
  // member too: it shows what the stalled member costs the others of its group.
  const groupSloth = async () => {
    const [slothToken, pumpToken] = await Promise.all(['sloth', 'pump'].map((u) => account(http, u)));
    const pump = await device(mqttUrl, 'pump', pumpToken);
    const conv = await new Promise<string>((resolve) => {
      pump.subscribe('chat/pump/default/in', { qos: 1 });
      pump.on('message', (_t, m) => {
        const e = JSON.parse(m.toString()) as { type: string; ref?: string; result?: { conv: string } };
        if (e.type === 'rpc' && e.ref === 'g') resolve(e.result!.conv);
      });
      setTimeout(() => pump.publish('chat/pump/default/out', JSON.stringify({ type: 'rpc', id: 'g', method: 'group.create', params: { name: 'busy', members: ['sloth', 'good0'] } }), { qos: 1 }), 200);
    });
    const stalled = stalledSubscriber(frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 0]), str('sloth:default'), str('sloth'), str(slothToken)])), 'chat/sloth/in');
    const text = 'x'.repeat(32 * 1024);
    while (!stop) {
      for (let i = 0; i < 4; i++) {
        pumped++;
        pump.publish('chat/pump/default/out', JSON.stringify({ type: 'send', id: randomUUID(), conv, body: { text, t: Date.now() } }), { qos: 1 });
      }
      await sleep(100);
    }
    pump.end(true);
    await stalled;
  };

  // The flooder: sends at full speed, never waiting; reconnects whenever it is cut off.
  const flood = async () => {
    while (!stop) {
      let c: MqttClient;
      try {
        c = await device(mqttUrl, 'flood', floodToken);
      } catch {
        await sleep(100);
        continue;
      }
      let open = true;
      c.on('close', () => (open = false));
      while (open && !stop) {
        for (let i = 0; i < 200 && open; i++) c.publish('chat/flood/default/out', JSON.stringify({ type: 'send', id: randomUUID(), to: 'flood', body: { text: 'spam' } }), { qos: 1 });
        await new Promise((r) => setImmediate(r));
      }
      c.end(true);
      await sleep(100);
    }
  };
  const floodToken = kinds.includes('flood') ? await account(http, 'flood') : '';
  await Promise.all([kinds.includes('sloth') && sloth(), kinds.includes('groupsloth') && groupSloth(), kinds.includes('flood') && flood()]);
  process.exit(0);
}

// ---- the measuring process --------------------------------------------------------

interface Broker {
  mqtt: string;
  http: string;
  stop(): Promise<void>;
}

async function startBroker(limits: unknown): Promise<Broker> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-isolation-'));
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  let dbName: string | undefined;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    MQTT_PORT: String(mqttPort),
    HTTP_PORT: String(httpPort),
    HOST: '127.0.0.1',
    DATA_DIR: dir,
    LOG_LEVEL: 'error',
    PRESENCE_DEBOUNCE_MS: '0',
    MQTT_ANONYMOUS: 'true',
    LIMITS: JSON.stringify(limits),
  };
  if (process.env.DATABASE_URL) {
    dbName = `bench_isolation_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await admin.connect();
    await admin.query(`create database ${dbName}`);
    await admin.end();
    const u = new URL(process.env.DATABASE_URL);
    u.pathname = `/${dbName}`;
    env.DATABASE_URL = u.toString();
  }
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(root, 'broker', 'main.ts')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`broker did not start:\n${out}`)), 120_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('chat platform ready')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`broker exited ${code}:\n${out}`)));
  });
  return {
    mqtt: `mqtt://127.0.0.1:${mqttPort}`,
    http: `http://127.0.0.1:${httpPort}`,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      if (dbName) {
        const admin = new pg.Client({ connectionString: process.env.DATABASE_URL });
        await admin.connect();
        await admin.query(`drop database if exists ${dbName} with (force)`);
        await admin.end();
      }
    },
  };
}

interface PhaseResult {
  phase: string;
  sent: number;
  acked: number;
  timeouts: number;
  ack: number[];
  delivery: number[];
  /** What the broker says it did (its /metrics). */
  broker: string;
  /** The busy group's messages: pumped, and received by good0 (a co-member of the sloth), with latencies. */
  group?: { pumped: number; received: number; latency: number[] };
}

async function phase(name: string, limits: unknown, withAbuse: boolean, seconds: number, pairs: number, rate: number): Promise<PhaseResult> {
  const broker = await startBroker(limits);
  let abuser: ChildProcess | undefined;
  try {
    const users = Array.from({ length: pairs * 2 }, (_, i) => `good${i}`);
    const tokens = await Promise.all(users.map((u) => account(broker.http, u)));
    const clients = await Promise.all(users.map((u, i) => device(broker.mqtt, u, tokens[i]!)));
    const pending = new Map<string, { t0: number; acked?: (ms: number) => void }>();
    const sentAt = new Map<string, number>();
    const ack: number[] = [];
    const delivery: number[] = [];
    const groupLatency: number[] = [];
    let measureFrom = Infinity;
    users.forEach((u, i) => {
      const c = clients[i]!;
      c.subscribe({ [`chat/${u}/in`]: { qos: 1 }, [`chat/${u}/default/in`]: { qos: 1 } });
      c.on('message', (_topic, payload) => {
        const e = JSON.parse(payload.toString()) as { type: string; id?: string; from?: string; body?: { t?: number } };
        if (e.type === 'ack' && e.id) pending.get(e.id)?.acked?.(performance.now());
        if (e.type === 'msg' && e.from === 'pump' && typeof e.body?.t === 'number') groupLatency.push(Date.now() - e.body.t);
        if (e.type === 'msg' && e.id && e.from !== u) {
          const t0 = sentAt.get(e.id);
          if (t0 !== undefined && t0 >= measureFrom) delivery.push(performance.now() - t0);
        }
      });
    });
    await sleep(300);
    if (withAbuse) {
      abuser = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--abuse', '--abusers', values.abusers!, '--mqtt', broker.mqtt, '--http', broker.http], { cwd: root, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    }
    let sent = 0;
    let acked = 0;
    let timeouts = 0;
    const until = performance.now() + 2_000 + seconds * 1000;
    measureFrom = performance.now() + 2_000;
    const loops = users.map(async (u, i) => {
      const peer = users[i % 2 ? i - 1 : i + 1]!;
      const c = clients[i]!;
      while (performance.now() < until) {
        const started = performance.now();
        const id = randomUUID();
        const inWindow = started >= measureFrom;
        const done = new Promise<number>((resolve) => {
          const t = setTimeout(() => resolve(Infinity), sendTimeoutMs);
          pending.set(id, {
            t0: started,
            acked: (at) => {
              clearTimeout(t);
              resolve(at - started);
            },
          });
        });
        sentAt.set(id, started);
        c.publish(`chat/${u}/default/out`, JSON.stringify({ type: 'send', id, to: peer, body: { text: 'hello' } }), { qos: 1 });
        const ms = await done;
        pending.delete(id);
        if (inWindow) {
          sent++;
          if (ms === Infinity) {
            timeouts++;
            ack.push(sendTimeoutMs);
          } else {
            acked++;
            ack.push(ms);
          }
        }
        const wait = 1000 / rate - (performance.now() - started);
        if (wait > 0) await sleep(wait);
      }
    });
    await Promise.all(loops);
    await sleep(500);
    let group: PhaseResult['group'];
    if (abuser) {
      const a = abuser;
      const reply = new Promise<number>((r) => a.once('message', (m: { pumped: number }) => r(m.pumped)));
      a.send?.('stop');
      const pumped = await Promise.race([reply, sleep(3_000).then(() => NaN)]);
      if (values.abusers!.split(',').includes('groupsloth')) group = { pumped, received: groupLatency.length, latency: groupLatency.sort((x, y) => x - y) };
    }
    for (const c of clients) c.end(true);
    const metrics = await (await fetch(`${broker.http}/metrics`)).text();
    const pick = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? 0);
    const brokerSays = [
      `slow consumers closed ${pick(/chat_limit_disconnects_total\{reason="slow_consumer"\} (\d+)/)}`,
      `flooders closed ${pick(/chat_limit_disconnects_total\{reason="flood"\} (\d+)/)}`,
      `requests refused ${[...metrics.matchAll(/chat_rate_limited_total\{[^}]*\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)}`,
      `messages stored ${pick(/chat_messages_stored_total (\d+)/)}`,
      `delivery queue depth at the end ${pick(/chat_delivery_queue_depth (\d+)/)}`,
    ].join(', ');
    return { phase: name, sent, acked, timeouts, ack: ack.sort((a, b) => a - b), delivery: delivery.sort((a, b) => a - b), broker: brokerSays, group };
  } finally {
    if (abuser && abuser.exitCode === null) {
      if (abuser.connected) abuser.send?.('stop');
      await Promise.race([new Promise((r) => abuser!.once('exit', r)), sleep(2_000)]);
      if (abuser.exitCode === null) abuser.kill('SIGKILL');
    }
    await broker.stop();
  }
}

async function main(): Promise<void> {
  if (values.abuse) return abuse(values.mqtt!, values.http!);
  const seconds = Number(values.seconds);
  const pairs = Number(values.pairs);
  const rate = Number(values.rate);
  const wanted = values.phases!.split(',');
  // Before issue 9: no limits, no slow-consumer bound, aedes defaults of then.
  const unprotected = { enabled: false, mqtt: { concurrency: 100, drainTimeoutMs: 30_000, connectTimeoutMs: 30_000 } };
  const results: PhaseResult[] = [];
  for (const name of wanted) {
    process.stderr.write(`phase ${name}: ${seconds} s, ${pairs * 2} well-behaved clients at ${rate} sends/s each...\n`);
    if (name === 'baseline') results.push(await phase(name, {}, false, seconds, pairs, rate));
    // Every client here is on loopback, which the connect limit exempts by default: not here.
    else if (name === 'protected') results.push(await phase(name, { connect: { exemptLoopback: false } }, true, seconds, pairs, rate));
    else if (name === 'unprotected') results.push(await phase(name, unprotected, true, seconds, pairs, rate));
    else throw new Error(`unknown phase ${name}`);
  }
  const ms = (v: number, r: PhaseResult) => (Number.isNaN(v) ? '-' : `${v >= sendTimeoutMs && r.timeouts ? '>=' : ''}${v.toFixed(1)}`);
  const lines = [
    `| phase | sends | acked | timed out | ack p50 ms | ack p99 ms | ack max ms | delivery p50 ms | delivery p99 ms |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
    ...results.map((r) => `| ${r.phase} | ${r.sent} | ${r.acked} | ${r.timeouts} | ${ms(percentile(r.ack, 0.5), r)} | ${ms(percentile(r.ack, 0.99), r)} | ${ms(r.ack.at(-1) ?? NaN, r)} | ${ms(percentile(r.delivery, 0.5), r)} | ${ms(percentile(r.delivery, 0.99), r)} |`),
  ];
  lines.push('', ...results.map((r) => `${r.phase}: ${r.broker}`));
  for (const r of results.filter((x) => x.group)) {
    const g = r.group!;
    lines.push(`${r.phase}: busy chat group -> good0 (co-member of the stalled member): ${g.received} of ${g.pumped} delivered by the end, latency p50 ${percentile(g.latency, 0.5).toFixed(0)} ms, p99 ${percentile(g.latency, 0.99).toFixed(0)} ms, max ${(g.latency.at(-1) ?? NaN).toFixed(0)} ms`);
  }
  const base = results.find((r) => r.phase === 'baseline');
  if (base) {
    for (const r of results.filter((x) => x !== base)) {
      lines.push('', `${r.phase}: ack p99 ${(percentile(r.ack, 0.99) / percentile(base.ack, 0.99)).toFixed(2)}x baseline, delivery p99 ${(percentile(r.delivery, 0.99) / percentile(base.delivery, 0.99)).toFixed(2)}x baseline`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
