// Child process: the single-commit limit of embedded PGlite. Single-row INSERT
// transactions one after another for `durationMs` on a table created for the purpose,
// in `dir` (a PGlite data directory), reported over IPC.
import { PGlite } from '@electric-sql/pglite';
import { createHistogram, record, toData } from '../lib/stats.ts';

interface Req {
  type: 'commit';
  dir: string;
  durationMs: number;
  warmupMs: number;
}

function isReq(m: unknown): m is Req {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'commit';
}

process.on('message', (m: unknown) => {
  if (!isReq(m)) return;
  run(m).then(
    (r) => process.send?.({ type: 'committed', ...r }, () => process.exit(0)),
    (err: unknown) => process.send?.({ type: 'commit-failed', message: String(err) }, () => process.exit(1)),
  );
});

async function run(req: Req): Promise<{ transactions: number; ms: number; latencyUs: ReturnType<typeof toData> }> {
  const db = await PGlite.create(req.dir);
  await db.exec(`create table if not exists bench_commit (
    id bigserial primary key, conv text not null, seq int not null, sender text not null, body jsonb not null, ts bigint not null)`);
  const body = JSON.stringify({ text: 'x'.repeat(100) });
  const insert = (i: number) =>
    db.query('insert into bench_commit (conv, seq, sender, body, ts) values ($1, $2, $3, $4, $5)', ['c_bench', i, 'bench', body, Date.now()]);
  const warmEnd = performance.now() + req.warmupMs;
  let i = 0;
  while (performance.now() < warmEnd) await insert(i++);
  const h = createHistogram();
  const t0 = performance.now();
  const end = t0 + req.durationMs;
  let n = 0;
  while (performance.now() < end) {
    const s = performance.now();
    await insert(i++);
    record(h, (performance.now() - s) * 1000);
    n++;
  }
  const ms = performance.now() - t0;
  await db.exec('drop table bench_commit');
  await db.close();
  return { transactions: n, ms, latencyUs: toData(h) };
}
