// Which code "ours" runs: the working tree (default), or a committed revision exported
// with `git archive` into a temp dir (read-only use of git). Other engineers edit the tree
// while benchmarks run; `--ours-ref HEAD` measures what was committed, and the report
// names the commit. The bench's own files are copied over the export so that helper
// processes (seeding) run against the same revision of core/ and broker/.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from './spawn.ts';
import { NotAvailableError } from './targets.ts';

export interface OursSource {
  root: string;
  /** "working tree" or "commit abc1234". */
  describe: string;
  cleanup(): void;
}

export function oursSource(ref: string): OursSource {
  if (ref === 'tree' || ref === '') {
    if (!existsSync(path.join(ROOT, 'broker', 'main.ts'))) {
      throw new NotAvailableError('our broker is not built yet: broker/main.ts does not exist in this checkout');
    }
    return { root: ROOT, describe: 'working tree', cleanup: () => {} };
  }
  const sha = execFileSync('git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = tempDir(`bench-src-${sha}-`);
  const tar = execFileSync('git', ['archive', '--format=tar', sha], { cwd: ROOT, maxBuffer: 1 << 30 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  rmSync(path.join(dir, 'bench'), { recursive: true, force: true });
  cpSync(path.join(ROOT, 'bench'), path.join(dir, 'bench'), { recursive: true, filter: (src) => !src.includes(`${path.sep}results`) });
  if (!existsSync(path.join(dir, 'broker', 'main.ts'))) {
    rmSync(dir, { recursive: true, force: true });
    throw new NotAvailableError(`our broker is not built at ${ref} (${sha}): broker/main.ts does not exist there`);
  }
  return { root: dir, describe: `commit ${sha}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
