// Command-line options: one table for every scenario, parsed with node:util parseArgs.
// Pure parsing helpers are exported for tests.
import { parseArgs } from 'node:util';
import type { ClientKind } from '../gen/client.ts';
import type { TargetName } from './targets.ts';

export const OPTIONS = {
  targets: { type: 'string' },
  'gen-cpus': { type: 'string', default: '0' },
  'broker-cpus': { type: 'string', default: '1' },
  workers: { type: 'string', default: '1' },
  client: { type: 'string', default: 'raw' },
  mosquitto: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string', default: '2' },
  pairs: { type: 'string' },
  payload: { type: 'string', default: '200' },
  qos: { type: 'string' },
  window: { type: 'string' },
  rate: { type: 'string' },
  conns: { type: 'string', default: '10000' },
  max: { type: 'string', default: '200000' },
  step: { type: 'string', default: '25000' },
  budget: { type: 'string', default: '30' },
  sizes: { type: 'string', default: '100,1000,10000' },
  modes: { type: 'string', default: 'write,read' },
  messages: { type: 'string' },
  store: { type: 'string', default: 'pglite,postgres' },
  missed: { type: 'string', default: '10000' },
  limit: { type: 'string', default: '1000' },
  tag: { type: 'string' },
  'ours-ref': { type: 'string', default: 'tree' },
  nice: { type: 'string', default: '0' },
  'no-readme': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export type Values = ReturnType<typeof parse>['values'];

export function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
}

export function int(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a non-negative integer, got "${v}"`);
  return n;
}

export function seconds(v: string | undefined, name: string, fallback: number): number {
  if (v === undefined || v === '') return fallback * 1000;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected seconds, got "${v}"`);
  return Math.round(n * 1000);
}

export function list(v: string | undefined, fallback: readonly string[]): string[] {
  if (v === undefined || v.trim() === '') return [...fallback];
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

export function oneOf<T extends string>(v: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${name}: "${v}" is not one of ${allowed.join(', ')}`);
  return v as T;
}

export function targets(v: string | undefined, fallback: readonly TargetName[]): TargetName[] {
  return list(v, fallback).map((t) => oneOf(t, ['mosquitto', 'aedes', 'ours'] as const, 'targets'));
}

export function clientKind(v: string): ClientKind {
  // --client raw,mqttjs (relay): the first one is the default for everything else.
  if (v.includes(',')) v = v.split(',')[0].trim();
  return oneOf(v, ['raw', 'mqttjs'] as const, 'client');
}

export function qosList(v: string | undefined, fallback: readonly string[]): Array<0 | 1> {
  return list(v, fallback).map((q) => (oneOf(q, ['0', '1'] as const, 'qos') === '0' ? 0 : 1));
}
