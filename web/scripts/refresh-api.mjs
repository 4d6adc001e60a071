// Refreshes src/api/openapi.json (and the generated schema.ts) from the server's own document:
// starts the debug binary in demo mode on a free port with a throwaway data directory, fetches
// GET /api/v1/openapi.json and stops it. Run after the API changed (the browser tests fail on a
// stale copy).   node scripts/refresh-api.mjs    (OMNIHUB_BIN or $CARGO_TARGET_DIR/debug/omnihub)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const web = resolve(new URL('..', import.meta.url).pathname);
const target = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : resolve(web, '..', 'target');
const bin = process.env.OMNIHUB_BIN ?? join(target, 'debug', 'omnihub');

const port = await new Promise((ok) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port: p } = s.address();
    s.close(() => ok(p));
  });
});
const dataDir = mkdtempSync(join(tmpdir(), 'omnihub-api-'));
const child = spawn(bin, ['demo', '--listen', `127.0.0.1:${port}`, '--redirect-listen', '', '--sandbox-listen', '', '--data-dir', dataDir], { stdio: 'ignore' });

const fetchDoc = () =>
  new Promise((ok, fail) => {
    https
      .get(`https://127.0.0.1:${port}/api/v1/openapi.json`, { rejectUnauthorized: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => (res.statusCode === 200 ? ok(text) : fail(new Error(`status ${res.statusCode}`))));
      })
      .on('error', fail);
  });

try {
  let doc;
  for (let i = 0; i < 240 && !doc; i++) {
    doc = await fetchDoc().catch(() => null);
    if (!doc) await new Promise((r) => setTimeout(r, 250));
  }
  if (!doc) throw new Error(`${bin} did not serve its OpenAPI document`);
  writeFileSync(join(web, 'src/api/openapi.json'), JSON.stringify(JSON.parse(doc), null, 2) + '\n');
  const gen = spawnSync('npm', ['run', 'gen:api'], { cwd: web, stdio: 'inherit' });
  if (gen.status !== 0) process.exitCode = 1;
} finally {
  child.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}
