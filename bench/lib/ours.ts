// Bench-side helpers for our platform: accounts over the HTTP API (DESIGN section 7),
// the Prometheus metrics it exposes, and RPC calls over MQTT.
import type { ChatUser } from './protocol.ts';
import { pool } from './pool.ts';

export const BENCH_PASSWORD = 'bench-password-1';

/** POST /v1/auth/register; throws with the server's answer when it is not 201. */
export async function register(httpUrl: string, user: string, device: string): Promise<ChatUser> {
  const r = await fetch(`${httpUrl}/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password: BENCH_PASSWORD, device }),
  });
  const text = await r.text();
  if (r.status !== 201) throw new Error(`register ${user}: HTTP ${r.status} ${text.slice(0, 200)}`);
  const body = JSON.parse(text) as { user?: unknown; device?: unknown; token?: unknown };
  if (typeof body.token !== 'string') throw new Error(`register ${user}: no token in ${text.slice(0, 200)}`);
  return { user, device, token: body.token };
}

/** Register many users, `concurrency` at a time; returns them and the rate achieved. */
export async function registerMany(httpUrl: string, names: readonly string[], device: string, concurrency = 8): Promise<{ users: ChatUser[]; perSec: number }> {
  const t0 = performance.now();
  const users = await pool(names, concurrency, (u) => register(httpUrl, u, device));
  return { users, perSec: (names.length * 1000) / (performance.now() - t0) };
}

/**
 * Sum of every sample of a metric in Prometheus text format (all label sets), or null
 * when absent: `chat_commit_batch_size_sum` -> sum of the histogram.
 */
export function promValue(text: string, name: string): number | null {
  let total: number | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) total = (total ?? 0) + v;
  }
  return total;
}

export async function scrapeMetrics(httpUrl: string): Promise<string> {
  const r = await fetch(`${httpUrl}/metrics`);
  return r.ok ? await r.text() : '';
}

export interface CommitStats {
  batches: number;
  messages: number;
  meanBatch: number | null;
  meanCommitMs: number | null;
}

/** Group-commit figures between two scrapes of /metrics. */
export function commitStats(before: string, after: string): CommitStats {
  const d = (name: string): number => (promValue(after, name) ?? 0) - (promValue(before, name) ?? 0);
  const batches = d('chat_commit_batch_size_count');
  const messages = d('chat_commit_batch_size_sum');
  const commitSeconds = d('chat_store_commit_seconds_sum');
  return {
    batches,
    messages,
    meanBatch: batches > 0 ? messages / batches : null,
    meanCommitMs: batches > 0 ? (commitSeconds * 1000) / batches : null,
  };
}
