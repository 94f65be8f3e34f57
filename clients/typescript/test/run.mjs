// `npm test`: creates throw-away databases with random names on the PostgreSQL at PGHOST:PGPORT
// (default 127.0.0.1:5432, user postgres), loads the fixture, runs `node --test` on test/*.test.*
// against them and drops them again, whatever the outcome.
//
//   <base>        the fixture, the extension, the mapping, bootstrap() and the filter 'cheap'
//   <base>_bare   the extension without a mapping (NotConfiguredError)
//   <base>_noext  no extension at all
//   <base>_next   empty: forward.test.mjs puts stand-ins of a later version's functions there
//
// and LOGIN roles (cluster-wide, dropped at the end too), as RecVector 0.3.0 expects them:
//
//   <base>_app     GRANT recvector_app: recommend, similar, explain, logInteraction
//   <base>_worker  GRANT recvector_worker: status
//   <base>_none    no RecVector role: PermissionError everywhere
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

import { CHEAP_FILTER, fixtureSql, mapping } from './fixture.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const host = process.env.PGHOST ?? '127.0.0.1';
const port = process.env.PGPORT ?? '5432';
const user = process.env.PGUSER ?? 'postgres';
const base = `recvector_ts_${randomBytes(4).toString('hex')}`;
const dbs = { main: base, bare: `${base}_bare`, noext: `${base}_noext`, next: `${base}_next` };
const roles = { app: `${base}_app`, worker: `${base}_worker`, none: `${base}_none` };
const grants = { app: 'recvector_app', worker: 'recvector_worker' };
// The client targets the SQL API of RecVector 0.3.0 (recvector_app, gamma, explain's options).
const MIN_VERSION = [0, 3, 0];
const createExtension = 'CREATE EXTENSION recvector CASCADE';
// The test roles get a random password too, so that they can log in where pg_hba.conf is not trust.
const rolePassword = randomBytes(12).toString('hex');
const url = (db, as = user, password = undefined) =>
  `postgres://${encodeURIComponent(as)}${password ? `:${password}` : ''}@${host}:${port}/${db}`;

function olderThan(version, min) {
  const parts = version.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < min.length; i++) if ((parts[i] ?? 0) !== min[i]) return (parts[i] ?? 0) < min[i];
  return false;
}

async function withClient(db, fn) {
  const client = new pg.Client({ connectionString: url(db) });
  client.on('notice', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function setUp() {
  await withClient('postgres', async (c) => {
    for (const db of Object.values(dbs)) await c.query(`CREATE DATABASE ${db}`);
    for (const role of Object.values(roles)) await c.query(`CREATE ROLE ${role} LOGIN PASSWORD '${rolePassword}'`);
  });
  const started = Date.now();
  await withClient(dbs.main, async (c) => {
    await c.query(fixtureSql);
    await c.query(createExtension);
    const { rows: v } = await c.query("SELECT extversion FROM pg_extension WHERE extname = 'recvector'");
    if (olderThan(v[0].extversion, MIN_VERSION)) {
      throw new Error(`recvector ${v[0].extversion} is installed; this client and its tests need ${MIN_VERSION.join('.')} or later`);
    }
    // The extension creates the group roles (once per cluster); the test roles join them.
    for (const [key, group] of Object.entries(grants)) await c.query(`GRANT ${group} TO ${roles[key]}`);
    await c.query('SELECT recvector.set_schema($1::jsonb)', [JSON.stringify(mapping)]);
    const { rows } = await c.query('SELECT recvector.bootstrap() AS b');
    if (rows[0].b.embedded !== 40 || rows[0].b.profiles !== 10) {
      throw new Error(`bootstrap() should embed 40 films and build 10 profiles: ${JSON.stringify(rows[0].b)}`);
    }
    await c.query('SELECT recvector.set_filter($1, $2)', ['cheap', CHEAP_FILTER]);
    console.log(`# recvector ${v[0].extversion}, fixture in ${dbs.main}: ${JSON.stringify(rows[0].b)} (${Date.now() - started} ms)`);
  });
  await withClient(dbs.bare, (c) => c.query(createExtension));
}

async function tearDown() {
  await withClient('postgres', async (c) => {
    for (const db of Object.values(dbs)) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    for (const role of Object.values(roles)) await c.query(`DROP ROLE IF EXISTS ${role}`);
  }).catch((err) => console.error(`# could not drop the test databases and roles ${base}*: ${err.message}`));
}

function runTests() {
  const files = readdirSync(here)
    .filter((f) => /\.test\.(mjs|cjs)$/.test(f))
    .sort()
    .map((f) => join(here, f));
  const env = {
    ...process.env,
    RECVECTOR_TEST_URL: url(dbs.main),
    RECVECTOR_TEST_BARE_URL: url(dbs.bare),
    RECVECTOR_TEST_NOEXT_URL: url(dbs.noext),
    RECVECTOR_TEST_NEXT_URL: url(dbs.next),
    RECVECTOR_TEST_APP_URL: url(dbs.main, roles.app, rolePassword),
    RECVECTOR_TEST_WORKER_URL: url(dbs.main, roles.worker, rolePassword),
    RECVECTOR_TEST_NONE_URL: url(dbs.main, roles.none, rolePassword),
  };
  // One file at a time: they share the fixture database.
  const args = ['--test', '--test-concurrency=1', ...files];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit', env });
    const forward = (sig) => child.kill(sig);
    process.on('SIGINT', forward).on('SIGTERM', forward);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

let code = 1;
try {
  await setUp();
  code = await runTests();
} catch (err) {
  console.error(`# setting up the test databases failed: ${err.message}`);
} finally {
  await tearDown();
}
process.exit(code);
