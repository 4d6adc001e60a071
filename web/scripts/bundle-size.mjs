// After `vite build`: reports the gzipped JavaScript that the first load of the console (the
// sign-in page and the inbox, which share the entry bundle) ships, fails over the budget, and
// leaves a gzipped twin (`name.gz`) beside every compressible file for the server to send.
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, extname } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUDGET_BYTES = 300 * 1024;
const COMPRESSIBLE = new Set(['.js', '.css', '.html', '.svg', '.json', '.txt']);
const MIN_TWIN_BYTES = 1024;
const dist = new URL('../dist/', import.meta.url).pathname;

const gzipped = (path) => gzipSync(readFileSync(path), { level: 9 });

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}

// What index.html makes the browser fetch as JavaScript before anything renders.
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const firstLoad = [
  ...html.matchAll(/<script[^>]*type="module"[^>]*src="([^"]+)"/g),
  ...html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+)"/g),
].map((m) => m[1]);
if (firstLoad.length === 0) {
  console.error('bundle-size: no module script found in dist/index.html');
  process.exit(1);
}

let total = 0;
for (const src of firstLoad) {
  const size = gzipped(join(dist, src)).length;
  total += size;
  console.log(`  ${src}  ${(size / 1024).toFixed(1)} KB gzipped`);
}
const kb = (total / 1024).toFixed(1);
console.log(`first load of the inbox: ${kb} KB of gzipped JavaScript (budget ${BUDGET_BYTES / 1024} KB)`);

for (const path of files(dist)) {
  if (path.endsWith('.gz') || !COMPRESSIBLE.has(extname(path))) continue;
  if (statSync(path).size < MIN_TWIN_BYTES) continue;
  writeFileSync(`${path}.gz`, gzipped(path));
}

if (total > BUDGET_BYTES) {
  console.error(`bundle-size: ${kb} KB is over the budget`);
  process.exit(1);
}
