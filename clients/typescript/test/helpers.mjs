// Shared by the test files: the databases test/run.mjs made, and a direct `pg` pool to check the
// engine's effects with plain SQL.
import pg from 'pg';

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\` (test/run.mjs)`);
  return value;
}

export const TEST_URL = env('RECVECTOR_TEST_URL');
export const BARE_URL = env('RECVECTOR_TEST_BARE_URL');
export const NOEXT_URL = env('RECVECTOR_TEST_NOEXT_URL');
export const NEXT_URL = env('RECVECTOR_TEST_NEXT_URL');
/** The fixture database as a LOGIN role granted recvector_app, as an application connects. */
export const APP_URL = env('RECVECTOR_TEST_APP_URL');
/** ... as a role granted recvector_worker. */
export const WORKER_URL = env('RECVECTOR_TEST_WORKER_URL');
/** ... as a role with no RecVector role at all. */
export const NONE_URL = env('RECVECTOR_TEST_NONE_URL');

/** A plain pg Pool on the fixture database (notices silenced). */
export function sqlPool(connectionString = TEST_URL) {
  const pool = new pg.Pool({ connectionString, max: 2 });
  pool.on('connect', (c) => c.on('notice', () => {}));
  return pool;
}

/** The same URL with another user (and optionally a password). */
export function urlAs(connectionString, user, password) {
  const u = new URL(connectionString);
  u.username = user;
  if (password !== undefined) u.password = password;
  return u.toString();
}

export const ids = (rows) => rows.map((r) => r.entityId);
