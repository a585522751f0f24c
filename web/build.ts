/**
 * Builds the web client into web/dist: app.js (web/src/main.ts with the SDK and MQTT.js
 * bundled in), app.css and index.html. `npm run build:web`, and `npm start` runs it first.
 *
 * esbuild, not Vite: one dependency the repository already has, a build of about half a
 * second, and no dev server or plugin stack to keep working on Node 20 (Vite 8 wants a
 * newer Node). The SDK is bundled from its TypeScript source (client-lib/src), so a fresh
 * clone needs no `npm run build -w client-lib` first. esbuild does not type-check:
 * `npm run typecheck:web` does (web/tsconfig.json).
 *
 * Files are written to a temporary name and renamed, so a server reading web/dist while a
 * build runs (tests build in parallel) never serves half a file.
 */
import { build, type Plugin } from 'esbuild';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const webDir = dirname(fileURLToPath(import.meta.url));
const sdkEntry = join(webDir, '..', 'client-lib', 'src', 'browser-bundle.ts');

/** `@mqtt-chat/client` -> the SDK's browser entry, from source. */
const sdkFromSource: Plugin = {
  name: 'sdk-from-source',
  setup(b) {
    b.onResolve({ filter: /^@mqtt-chat\/client$/ }, () => ({ path: sdkEntry }));
  },
};

export interface WebBuild {
  outdir: string;
  files: { name: string; bytes: number }[];
  ms: number;
}

async function writeAtomically(path: string, contents: Uint8Array | string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  await writeFile(temporary, contents);
  await rename(temporary, path);
}

export async function buildWeb(options: { outdir?: string; minify?: boolean } = {}): Promise<WebBuild> {
  const started = Date.now();
  const outdir = options.outdir ?? join(webDir, 'dist');
  await mkdir(outdir, { recursive: true });
  const result = await build({
    entryPoints: [
      { in: join(webDir, 'src', 'main.ts'), out: 'app' },
      { in: join(webDir, 'src', 'app.css'), out: 'app' },
    ],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome100', 'firefox100', 'safari16'],
    minify: options.minify ?? true,
    sourcemap: 'linked',
    outdir,
    write: false,
    logLevel: 'silent',
    legalComments: 'linked',
    plugins: [sdkFromSource],
  });
  const files: WebBuild['files'] = [];
  for (const file of result.outputFiles) {
    await writeAtomically(file.path, file.contents);
    files.push({ name: basename(file.path), bytes: file.contents.byteLength });
  }
  const html = await readFile(join(webDir, 'src', 'index.html'));
  await writeAtomically(join(outdir, 'index.html'), html);
  files.push({ name: 'index.html', bytes: html.byteLength });
  return { outdir, files, ms: Date.now() - started };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  buildWeb().then(
    ({ outdir, files, ms }) => {
      const list = files.map((f) => `  ${f.name.padEnd(16)} ${(f.bytes / 1024).toFixed(1).padStart(7)} KiB`).join('\n');
      process.stdout.write(`web client built in ${ms} ms -> ${outdir}\n${list}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`web build failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
