import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalObjectStore } from '../../workers/media/local-store.ts';
import { mediaEndToEnd } from './media.e2e.ts';

mediaEndToEnd('local directory', async (clock, config) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'media-e2e-'));
  const objects = await LocalObjectStore.open(config, dataDir, clock);
  return { objects, restoreTakesTime: config.local.restoreDelaySeconds > 0, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
});
