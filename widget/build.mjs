// Builds dist/widget.js (one minified IIFE) and its gzipped twin, prints both sizes, and fails
// when the gzipped script is over the budget. `--tests` bundles test/*.test.ts for `node --test`.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

const BUDGET = 30 * 1024;

if (process.argv.includes('--tests')) {
  const tests = readdirSync('test').filter((f) => f.endsWith('.test.ts'));
  await build({
    entryPoints: tests.map((f) => `test/${f}`),
    outdir: 'dist-test',
    bundle: true,
    platform: 'node',
    format: 'esm',
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
} else {
  mkdirSync('dist', { recursive: true });
  await build({
    entryPoints: ['src/main.ts'],
    outfile: 'dist/widget.js',
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2019',
    legalComments: 'none',
    logLevel: 'warning',
  });
  const js = readFileSync('dist/widget.js');
  const gz = gzipSync(js, { level: 9 });
  writeFileSync('dist/widget.js.gz', gz);
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  console.log(`widget.js: ${kb(js.length)}, gzipped ${kb(gz.length)} (budget ${kb(BUDGET)})`);
  if (gz.length > BUDGET) {
    console.error('widget.js is over its gzipped budget');
    process.exit(1);
  }
}
