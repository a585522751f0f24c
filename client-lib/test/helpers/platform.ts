/**
 * The real server for integration tests, from the repository's test/helpers/platform.ts.
 *
 * client-lib has no dependency on server code, not even at type level: the helper is
 * imported at run time through a computed specifier (so `tsc -p client-lib` does not
 * compile the server), and typed here by the contract the lead published for it.
 */

export interface TestPlatform {
  mqttUrl: string;
  wsUrl: string;
  httpUrl: string;
  close(): Promise<void>;
}

export interface ChildPlatform {
  mqttUrl: string;
  wsUrl: string;
  httpUrl: string;
  dataDir: string;
  kill(signal?: NodeJS.Signals): Promise<unknown>;
  /** Same ports and DATA_DIR. */
  restart(): Promise<void>;
  /** Kill and remove the data directory (when the helper offers it). */
  dispose?(): Promise<void>;
  output?(): string;
}

export interface Registration {
  user: string;
  device: string;
  token: string;
  refresh_token: string;
  expires_at: number;
}

export interface PlatformHelpers {
  startPlatform(opts?: { fanoutWriteMax?: number; store?: 'pglite' | 'postgres' }): Promise<TestPlatform>;
  spawnPlatform(opts?: { dataDir?: string; env?: Record<string, string> }): Promise<ChildPlatform>;
  registerUser(httpUrl: string, user: string, password?: string, device?: string): Promise<Registration>;
}

/**
 * CLIENT_LIB_PLATFORM_HELPER may point at the helper of another checkout of the server
 * (e.g. a stable snapshot while the server in this tree is being changed).
 */
export async function loadPlatform(): Promise<PlatformHelpers> {
  const override = process.env.CLIENT_LIB_PLATFORM_HELPER;
  const specifier = override ? new URL(`file://${override}`).href : new URL('../../../test/helpers/platform.ts', import.meta.url).href;
  return (await import(/* @vite-ignore */ specifier)) as PlatformHelpers;
}

/** A user name unique to this run (the platforms are fresh, but tests share them). */
export function uniqueUser(prefix: string): string {
  return `${prefix}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Polls `condition` until it holds or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
