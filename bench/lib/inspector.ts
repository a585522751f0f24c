// A Node broker observed from outside through the V8 inspector (the broker runs with
// --inspect=127.0.0.1:PORT; no code of the broker is involved): a full garbage collection,
// and the JS heap in use after it. Memory figures of Node processes mean little without
// them: RSS also holds garbage that the next GC gives back, and pages V8 keeps after it.
import WebSocket from 'ws';

/** Run one inspector method; null when the inspector cannot be reached or answers an error. */
export async function inspectorCall(port: number, method: string, timeoutMs = 30000): Promise<Record<string, unknown> | null> {
  try {
    const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl?: string }>;
    const url = list[0]?.webSocketDebuggerUrl;
    if (!url) return null;
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const result = await new Promise<Record<string, unknown> | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), timeoutMs);
      ws.on('message', (data) => {
        const m = JSON.parse(String(data)) as { id?: number; error?: unknown; result?: Record<string, unknown> };
        if (m.id === 1) {
          clearTimeout(timer);
          resolve(m.error === undefined ? (m.result ?? {}) : null);
        }
      });
      ws.send(JSON.stringify({ id: 1, method }));
    });
    ws.close();
    return result;
  } catch {
    return null;
  }
}

/** Full GC, then the bytes of JS heap in use; null when not possible. */
export async function gcAndHeapUsed(port: number): Promise<number | null> {
  if ((await inspectorCall(port, 'HeapProfiler.collectGarbage')) === null) return null;
  const r = await inspectorCall(port, 'Runtime.getHeapUsage');
  return r && typeof r.usedSize === 'number' ? r.usedSize : null;
}
