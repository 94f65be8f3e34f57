// Who owns the connection, through the CommonJS build: { connectionString } creates a Pool and
// close() ends it; a caller's { pool } or { client } stays open.
const assert = require('node:assert/strict');
const { randomBytes } = require('node:crypto');
const { after, before, describe, it } = require('node:test');
const pg = require('pg');

const { RecEngine, RecVectorError, createRecEngine, toCamel, toSnake } = require('../dist/index.cjs');

const TEST_URL = process.env.RECVECTOR_TEST_URL;
if (!TEST_URL) throw new Error('RECVECTOR_TEST_URL is not set: run the tests with `npm test`');

let admin;
before(() => {
  admin = new pg.Pool({ connectionString: TEST_URL, max: 1 });
});
after(() => admin.end());

async function backends(appName) {
  const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [appName]);
  return rows[0].n;
}

async function eventually(check, ms = 3000) {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('connection ownership', () => {
  it('{ connectionString }: the engine owns its pool and close() ends it', async () => {
    const app = `rvts_${randomBytes(4).toString('hex')}`;
    const url = new URL(TEST_URL);
    url.searchParams.set('application_name', app);
    const rec = createRecEngine({ connectionString: url.toString() });
    assert.ok(rec instanceof RecEngine);
    assert.equal((await rec.recommend({ userId: 1, topK: 2 })).length, 2);
    assert.equal(await backends(app), 1);
    await rec.close();
    assert.ok(await eventually(async () => (await backends(app)) === 0), 'the pool\'s connection is closed');
    await rec.close(); // idempotent
    await assert.rejects(rec.status(), (err) => err instanceof RecVectorError && /closed/.test(err.message));
  });

  it('{ pool }: close() leaves the caller\'s pool open', async () => {
    const pool = new pg.Pool({ connectionString: TEST_URL, max: 2 });
    try {
      const rec = createRecEngine({ pool });
      assert.equal((await rec.similar({ entityId: '2', topK: 3 })).length, 3);
      await rec.close();
      await assert.rejects(rec.similar({ entityId: '2' }), /closed/);
      const { rows } = await pool.query('SELECT 1 AS one');
      assert.equal(rows[0].one, 1);
    } finally {
      await pool.end();
    }
  });

  it('{ client }: works on a connected Client (e.g. inside the caller\'s transaction) and leaves it open', async () => {
    const client = new pg.Client({ connectionString: TEST_URL });
    client.on('notice', () => {});
    await client.connect();
    try {
      const rec = createRecEngine({ client });
      await client.query('BEGIN');
      await rec.logInteraction({ userId: 9, entityId: 33, kind: 'txn-test' });
      const inside = await client.query("SELECT count(*)::int AS n FROM recvector.events WHERE kind = 'txn-test'");
      assert.equal(inside.rows[0].n, 1);
      await client.query('ROLLBACK');
      const outside = await admin.query("SELECT count(*)::int AS n FROM recvector.events WHERE kind = 'txn-test'");
      assert.equal(outside.rows[0].n, 0, 'the interaction rolled back with the caller\'s transaction');
      await rec.close();
      assert.equal((await client.query('SELECT 2 AS two')).rows[0].two, 2);
    } finally {
      await client.end();
    }
  });

  it('{ pool } with a PoolClient checked out of it', async () => {
    const pool = new pg.Pool({ connectionString: TEST_URL, max: 1 });
    const client = await pool.connect();
    try {
      const rec = createRecEngine({ client });
      const s = await rec.status();
      assert.equal(s.entityVectors, 40);
    } finally {
      client.release();
      await pool.end();
    }
  });
});

describe('naming helpers', () => {
  it('toCamel and toSnake', () => {
    assert.equal(toCamel('popularity_term'), 'popularityTerm');
    assert.equal(toCamel('entity_id'), 'entityId');
    assert.equal(toCamel('rank'), 'rank');
    assert.equal(toSnake('candidatePool'), 'candidate_pool');
    assert.equal(toSnake('exclude_seen'), 'exclude_seen');
    assert.equal(toSnake('k'), 'k');
  });
});
