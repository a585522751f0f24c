// The orchestrator's side of seeding: run bench/servers/seed.ts under the source root of
// "ours", pinned to the broker CPUs (it does the broker's database work).
import path from 'node:path';
import type { ChatUser } from './protocol.ts';
import { nextMessage, spawnTs } from './spawn.ts';

export interface SeedResult {
  jwtSecret: string;
  users: ChatUser[];
  ms: number;
}

type Answer = ({ type: 'seeded' } & SeedResult) | { type: 'seed-failed'; message: string };

function isAnswer(m: unknown): m is Answer {
  const t = typeof m === 'object' && m !== null ? (m as { type?: unknown }).type : undefined;
  return t === 'seeded' || t === 'seed-failed';
}

export async function seedInChild(
  root: string,
  cpus: string,
  o: { dataDir?: string; databaseUrl?: string; names: string[]; device: string; jwtSecret?: string },
): Promise<SeedResult> {
  const child = spawnTs(path.join(root, 'bench', 'servers', 'seed.ts'), { cpus, cwd: root, nodeArgs: ['--max-old-space-size=4096'] });
  try {
    child.proc.send({ type: 'seed', ...o });
    const a = await nextMessage(child.proc, isAnswer, 300000, 'seeding users');
    if (a.type === 'seed-failed') throw new Error(`seeding users failed: ${a.message}`);
    return { jwtSecret: a.jwtSecret, users: a.users, ms: a.ms };
  } finally {
    await child.stop(2000);
  }
}
