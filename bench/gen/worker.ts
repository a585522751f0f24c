// A load-generator worker process: receives one job over IPC, runs it, reports.
// Started (pinned) by bench/lib/gen.ts; not meant to be run by hand.
import { processIO } from './io.ts';
import { runRelay } from './relay.ts';
import { runIdle } from './idle.ts';
import { runChat } from './chat.ts';
import { runFanout } from './fanout.ts';
import { runSync } from './sync.ts';

const io = processIO();

async function main(): Promise<void> {
  const { job } = await io.next('job');
  switch (job.kind) {
    case 'relay':
      io.send({ type: 'result', result: await runRelay(job, io) });
      break;
    case 'chat':
      io.send({ type: 'result', result: await runChat(job, io) });
      break;
    case 'idle':
      await runIdle(job, io);
      break;
    case 'fanout':
      io.send({ type: 'result', result: await runFanout(job, io) });
      break;
    case 'sync':
      io.send({ type: 'result', result: await runSync(job, io) });
      break;
  }
}

main().then(
  () => setTimeout(() => process.exit(0), 100),
  (err: unknown) => {
    io.send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    setTimeout(() => process.exit(1), 100);
  },
);
