// Process accounting from /proc (Linux) and CPU pinning with taskset. The parsers are
// pure and exported for tests; the readers are thin wrappers around readFileSync.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpuPercent } from './stats.ts';

export interface ProcStat {
  pid: number;
  ppid: number;
  utime: number; // clock ticks, all threads
  stime: number;
  threads: number;
  rssPages: number;
  nice: number;
}

/** Parse /proc/PID/stat (the command name may hold spaces and parentheses). */
export function parseProcStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  const pid = Number(text.slice(0, text.indexOf('(')).trim());
  // Fields after "comm": index 0 is field 3 (state) of proc(5).
  const f = text.slice(close + 2).trim().split(/\s+/);
  return {
    pid,
    ppid: Number(f[1]),
    utime: Number(f[11]),
    stime: Number(f[12]),
    threads: Number(f[17]),
    rssPages: Number(f[21]),
    nice: Number(f[16]),
  };
}

/** VmRSS of /proc/PID/status in bytes (0 when absent, e.g. a zombie). */
export function parseVmRss(statusText: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(statusText);
  return m ? Number(m[1]) * 1024 : 0;
}

export interface CpuLine {
  busy: number;
  total: number;
}

/** Per-core busy and total ticks from /proc/stat ("cpu0 user nice system idle iowait ..."). */
export function parseCpuLines(procStat: string): Map<number, CpuLine> {
  const out = new Map<number, CpuLine>();
  for (const line of procStat.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest fields are already in user)
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    out.set(Number(m[1]), { busy: total - idle, total });
  }
  return out;
}

let clkTckCache = 0;
export function clkTck(): number {
  if (clkTckCache === 0) {
    try {
      clkTckCache = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTckCache = 100;
    }
  }
  return clkTckCache;
}

export function readProcStat(pid: number): ProcStat | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

export function readRss(pid: number): number {
  try {
    return parseVmRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return 0;
  }
}

/** All live descendants of pid (children, grandchildren, ...), from /proc/* /stat. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readProcStat(Number(name));
    if (st) parent.set(st.pid, st.ppid);
  }
  const out: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const p = frontier.pop() as number;
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        frontier.push(child);
      }
    }
  }
  return out;
}

/** CPU ticks (user + system) of a set of processes; dead ones count as 0. */
export function ticksOf(pids: readonly number[]): number {
  let t = 0;
  for (const pid of pids) {
    const st = readProcStat(pid);
    if (st) t += st.utime + st.stime;
  }
  return t;
}

export function readCpuLines(): Map<number, CpuLine> {
  return parseCpuLines(readFileSync('/proc/stat', 'utf8'));
}

/** Set the CPU affinity of every thread of pid (taskset -a -p). */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** Set the scheduling priority of a process (renice); errors are ignored (process gone). */
export function renice(pid: number, n: number): void {
  try {
    execFileSync('renice', ['-n', String(n), '-p', String(pid)], { stdio: 'ignore' });
  } catch {
    // gone, or not permitted: the report's "other CPU" column shows the consequence
  }
}

/**
 * With kernel.sched_autogroup_enabled, CPU is shared between sessions first and nice only
 * ranks processes inside a session: give this session's autogroup (the bench and every
 * child it starts) the niceness, and return a function that puts the old value back.
 */
export function boostAutogroup(n: number): () => void {
  try {
    const m = /nice\s+(-?\d+)/.exec(readFileSync('/proc/self/autogroup', 'utf8'));
    const before = m ? Number(m[1]) : 0;
    writeFileSync('/proc/self/autogroup', String(n));
    return () => {
      try {
        writeFileSync('/proc/self/autogroup', String(before));
      } catch {
        // nothing to restore
      }
    };
  } catch {
    return () => {};
  }
}

/** The CPU list a process may run on, as taskset prints it ("0,1"). */
export function affinity(pid: number): string {
  const out = execFileSync('taskset', ['-p', '-c', String(pid)], { encoding: 'utf8' });
  const m = /list:\s*(.+)$/m.exec(out);
  return m ? m[1].trim() : '';
}

/** Available memory of the machine in bytes (MemAvailable). */
export function memAvailable(): number {
  const m = /^MemAvailable:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A group of processes whose CPU use is measured over a window. */
export interface CpuGroup {
  name: string;
  /** Cores the group is pinned to (0 when unpinned / unknown). */
  cores: number;
  /** Evaluated at each sample: process trees change (postgres backends, workers). */
  pids: () => number[];
}

export interface CpuWindowResult {
  wallMs: number;
  groups: Record<string, { cpuPct: number; cores: number }>;
  /** Busy percent of each core over the window, all processes included. */
  cores: Record<string, number>;
}

/** Start a CPU measurement window; call the returned function to close it. */
export function cpuWindow(groups: readonly CpuGroup[]): () => CpuWindowResult {
  const t0 = performance.now();
  const start = groups.map((g) => new Map(g.pids().map((p) => [p, ticksOf([p])])));
  const lines0 = readCpuLines();
  return () => {
    const wallMs = performance.now() - t0;
    const lines1 = readCpuLines();
    const out: CpuWindowResult = { wallMs, groups: {}, cores: {} };
    groups.forEach((g, gi) => {
      let ticks = 0;
      const before = start[gi];
      for (const pid of new Set([...before.keys(), ...g.pids()])) {
        const now = ticksOf([pid]);
        // A process gone at the end counts as 0 -> ignore it rather than go negative.
        const b = before.get(pid) ?? 0;
        if (now >= b) ticks += now - b;
      }
      out.groups[g.name] = { cpuPct: round1(cpuPercent(ticks, clkTck(), wallMs)), cores: g.cores };
    });
    for (const [cpu, l1] of lines1) {
      const l0 = lines0.get(cpu);
      if (!l0 || l1.total === l0.total) continue;
      out.cores[`cpu${cpu}`] = round1(((l1.busy - l0.busy) / (l1.total - l0.total)) * 100);
    }
    return out;
  };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Parse the "Max open files" line of /proc/PID/limits: [soft, hard]. */
export function parseNofile(limits: string): [number, number] {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const n = (x: string | undefined): number => (x === undefined || x === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(x));
  return m ? [n(m[1]), n(m[2])] : [1024, 1024];
}

/**
 * The highest RLIMIT_NOFILE a child can get: our hard limit, unless we may raise it
 * (CAP_SYS_RESOURCE), then fs.nr_open.
 */
export function maxNofile(): { limit: number; why: string } {
  const [, hard] = parseNofile(readFileSync('/proc/self/limits', 'utf8'));
  const capEff = /^CapEff:\s+([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  const CAP_SYS_RESOURCE = 24n;
  const canRaise = ((BigInt(`0x${capEff}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
  if (canRaise) {
    const nrOpen = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
    return { limit: nrOpen, why: `fs.nr_open = ${nrOpen} (CAP_SYS_RESOURCE held)` };
  }
  return { limit: hard, why: `hard RLIMIT_NOFILE ${hard} of this environment (no CAP_SYS_RESOURCE to raise it)` };
}

/** Open file descriptors of a process and its RLIMIT_NOFILE soft limit (null when unreadable). */
export function fdUsage(pid: number): { open: number; limit: number } | null {
  try {
    return { open: readdirSync(`/proc/${pid}/fd`).length, limit: parseNofile(readFileSync(`/proc/${pid}/limits`, 'utf8'))[0] };
  } catch {
    return null;
  }
}
