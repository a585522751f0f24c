// Child process: seeds chat users into a store (see bench/lib/seed.ts), then reports the
// users and their tokens over IPC. Runs under the source root of "ours" (tree or commit).
import { seedUsers } from '../lib/seed.ts';

interface SeedRequest {
  type: 'seed';
  dataDir?: string;
  databaseUrl?: string;
  names: string[];
  device: string;
  jwtSecret?: string;
}

function isSeedRequest(m: unknown): m is SeedRequest {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'seed' && Array.isArray((m as { names?: unknown }).names);
}

process.on('message', (m: unknown) => {
  if (!isSeedRequest(m)) return;
  seedUsers(m).then(
    (r) => process.send?.({ type: 'seeded', ...r }, () => process.exit(0)),
    (err: unknown) => process.send?.({ type: 'seed-failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1)),
  );
});
