// Results: bench/results/{scenario}.json (everything measured), .md (tables), .svg (chart),
// and the same tables in bench/README.md between markers, so the README always shows the
// latest figures with the command that produced them.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { markdownTable, type Table } from './markdown.ts';
import { ROOT } from './spawn.ts';
import { renderSvg, type Panel } from './svg.ts';

export interface MachineInfo {
  cpus: number;
  model: string;
  memGiB: number;
  node: string;
  kernel: string;
  loadavgAtStart: number[];
  genCpus: string;
  brokerCpus: string;
  /** Scheduling priority given to the measured processes (0: unchanged). */
  nice: number;
}

export interface Report<T> {
  scenario: string;
  title: string;
  command: string;
  startedAt: string;
  finishedAt: string;
  machine: MachineInfo;
  git: { commit: string; dirty: boolean };
  /** What "ours" ran: "working tree" or "commit abc1234" (--ours-ref). */
  ours?: string;
  options: Record<string, unknown>;
  data: T;
  tables: Table[];
  panels: Panel[];
  notes: string[];
  /** Parts that did not run, and why. */
  incomplete: string[];
}

/** What a scenario returns; run.ts adds the command, machine, commit and times. */
export type ScenarioOutput<T> = Omit<Report<T>, 'command' | 'machine' | 'git' | 'ours' | 'startedAt' | 'finishedAt'>;

export function machineInfo(genCpus: string, brokerCpus: string, nice = 0): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model ?? '?',
    memGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    kernel: os.release(),
    loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    genCpus,
    brokerCpus,
    nice,
  };
}

export function gitInfo(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: '?', dirty: true };
  }
}

export function commandLine(argv: readonly string[]): string {
  return `npm run bench -- ${argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}`;
}

export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
export const README = path.join(ROOT, 'bench', 'README.md');

/** The Markdown section of one report (used in results/{scenario}.md and the README). */
export function reportMarkdown<T>(r: Report<T>, headingLevel = 3): string {
  const h = '#'.repeat(headingLevel);
  const m = r.machine;
  const lines = [
    `${h} ${r.title}`,
    '',
    '```',
    r.command,
    '```',
    '',
    `${r.finishedAt.slice(0, 16).replace('T', ' ')} UTC, checkout at commit ${r.git.commit}${r.git.dirty ? ' (dirty tree)' : ''}` +
      `${r.ours ? `, our broker from the ${r.ours}` : ''}; ` +
      `${m.cpus} × ${m.model}, ${m.memGiB} GiB, Node ${m.node}; generator on CPU ${m.genCpus}, broker on CPU ${m.brokerCpus}` +
      `${m.nice ? ` (measured processes at nice ${m.nice})` : ''}; ` +
      `load average at start ${m.loadavgAtStart.join(' ')}.`,
    '',
  ];
  for (const t of r.tables) lines.push(markdownTable(t), '');
  if (r.panels.length) lines.push(`![${r.scenario}](results/${r.scenario}.svg)`, '');
  if (r.incomplete.length) {
    lines.push('**Not measured in this run:**', '');
    for (const s of r.incomplete) lines.push(`- ${s}`);
    lines.push('');
  }
  if (r.notes.length) {
    lines.push('Notes:', '');
    for (const s of r.notes) lines.push(`- ${s}`);
    lines.push('');
  }
  return lines.join('\n');
}

export function writeReport<T>(r: Report<T>, opts: { readme: boolean }): string[] {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const base = path.join(RESULTS_DIR, r.scenario);
  const files = [`${base}.json`, `${base}.md`];
  writeFileSync(`${base}.json`, `${JSON.stringify(r, replacer, 2)}\n`);
  writeFileSync(`${base}.md`, reportMarkdown(r, 1).replace(`](results/${r.scenario}.svg)`, `](${r.scenario}.svg)`));
  if (r.panels.length) {
    writeFileSync(`${base}.svg`, renderSvg(r.title, r.panels, `${r.command}  ·  ${r.finishedAt.slice(0, 16).replace('T', ' ')} UTC`));
    files.push(`${base}.svg`);
  }
  if (opts.readme) {
    updateReadmeSection(r.scenario, reportMarkdown(r, 3));
    files.push(README);
  }
  return files;
}

/** Replace (or append) the section between <!-- results:NAME --> markers. */
export function replaceSection(doc: string, name: string, body: string): string {
  const start = `<!-- results:${name} -->`;
  const end = `<!-- /results:${name} -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) return doc.slice(0, i) + block + doc.slice(j + end.length);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

function updateReadmeSection(name: string, body: string): void {
  const doc = existsSync(README) ? readFileSync(README, 'utf8') : '# Benchmarks\n';
  writeFileSync(README, replaceSection(doc, name, body));
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}
