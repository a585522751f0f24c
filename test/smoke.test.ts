import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startPlatform, registerUser, type TestPlatform } from './helpers/platform.ts';
import { Device } from './helpers/mqtt.ts';

describe('smoke', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startPlatform();
  });
  afterAll(async () => p?.close());

  it('two users chat 1:1 over TCP and WebSocket', async () => {
    const a = await registerUser(p.httpUrl, 'alice');
    const b = await registerUser(p.httpUrl, 'bob');
    const alice = await Device.connect(p.mqttUrl, 'alice', a.token);
    const bob = await Device.connect(p.wsUrl, 'bob', b.token);
    const ack = await alice.send({ to: 'bob' }, { text: 'hi' });
    expect(ack.seq).toBe(1);
    const got = await bob.waitFor((e) => e.type === 'msg' && e.seq === 1);
    expect(got).toMatchObject({ from: 'alice', body: { text: 'hi' }, conv: ack.conv });
    await alice.close();
    await bob.close();
  });
});
