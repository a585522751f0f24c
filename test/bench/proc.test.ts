import { describe, expect, it } from 'vitest';
import { parseCpuLines, parseNofile, parseProcStat, parseVmRss } from '../../bench/lib/proc.ts';

describe('/proc parsers', () => {
  it('parseProcStat reads ppid, CPU ticks, threads and RSS, whatever the command name', () => {
    const line = '4242 (node (worker) x) S 4000 4242 4000 0 -1 4194560 1234 0 0 0 750 250 0 0 10 -10 11 0 99999 1234567 5000 18446744073709551615';
    expect(parseProcStat(line)).toEqual({ pid: 4242, ppid: 4000, utime: 750, stime: 250, threads: 11, rssPages: 5000, nice: -10 });
  });
  it('parseVmRss reads kB into bytes', () => {
    expect(parseVmRss('Name:\tmosquitto\nVmRSS:\t   15360 kB\nThreads:\t1\n')).toBe(15360 * 1024);
    expect(parseVmRss('Name:\tzombie\n')).toBe(0);
  });
  it('parseCpuLines sums busy and total per core', () => {
    const stat = 'cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 1 4 88 2 0 0 0 0 0\ncpu1 50 0 25 20 5 0 0 0 0 0\nintr 1\n';
    const m = parseCpuLines(stat);
    expect(m.get(0)).toEqual({ busy: 10, total: 100 });
    expect(m.get(1)).toEqual({ busy: 75, total: 100 });
    expect(m.size).toBe(2);
  });
  it('parseNofile reads soft and hard limits', () => {
    const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\n';
    expect(parseNofile(limits)).toEqual([1024, 20000]);
    expect(parseNofile('Max open files            unlimited            unlimited            files\n')).toEqual([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
  });
});
