import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../config/index.ts';

describe('config', () => {
  it('layers defaults < config files < environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'a.json');
    writeFileSync(file, JSON.stringify({ httpPort: 9000, fanoutWriteMax: 50 }));
    const base = loadConfig({}, {}, [join(import.meta.dirname, '..', 'config', 'default.json')]);
    expect(base.mqttPort).toBe(1883);
    expect(base.httpPort).toBe(8080);
    expect(base.mqttAnonymous).toBe(false);
    const layered = loadConfig({ FANOUT_WRITE_MAX: '7', MQTT_ANONYMOUS: 'true' }, {}, [join(import.meta.dirname, '..', 'config', 'default.json'), file]);
    expect(layered).toMatchObject({ httpPort: 9000, fanoutWriteMax: 7, mqttAnonymous: true });
  });

  it('names the key and the variable of a bad value', () => {
    const err = (() => {
      try {
        loadConfig({ MQTT_PORT: 'seventy' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/mqttPort \(env MQTT_PORT\)/);
    expect(() => loadConfig({ FANOUT_WRITE_MAX: '0' })).toThrow(/fanoutWriteMax/);
    expect(() => loadConfig({ JWT_SECRET: 'short' })).toThrow(/jwtSecret.*32/);
  });
});
