import { it, expect } from 'vitest';
import { startPlatform, registerUser } from '../helpers/platform.ts';
import { Device } from '../helpers/mqtt.ts';
import { limitsWith } from '../../config/limits.ts';
it('smoke', async () => {
  const t0 = Date.now();
  const p = await startPlatform({ config: { typingMinIntervalMs: 0, limits: limitsWith({ connection: { messages: { rate: 0.01, burst: 5 } } }) } });
  console.log('start', Date.now() - t0);
  const a = await registerUser(p.httpUrl, 'alice');
  await registerUser(p.httpUrl, 'bob');
  console.log('reg', Date.now() - t0);
  const d = await Device.connect(p.mqttUrl, 'alice', a.token);
  console.log('conn', Date.now() - t0);
  const ack = await d.send({ to: 'bob' }, { text: 'x' });
  console.log('ack', Date.now() - t0);
  expect(ack.type).toBe('ack');
  await d.close();
  await p.close();
});
