// Bare aedes 1.2.0 with its defaults (in-memory persistence, no hooks), on an ephemeral
// port of 127.0.0.1: the reference for what our hooks and services cost.
// Started pinned by bench/lib/targets.ts; reports {type:'listening', port} over IPC.
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const aedes = await Aedes.createBroker();
const server = createServer(aedes.handle);
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.send?.({ type: 'listening', port });
});
aedes.on('clientError', () => {});
aedes.on('connectionError', () => {});

function shutdown(): void {
  server.close();
  aedes.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('disconnect', shutdown);
