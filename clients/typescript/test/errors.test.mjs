// Typed errors: from the real extension (SQLSTATEs), from the connection, and found before any SQL.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';

import {
  ConnectionError,
  InvalidArgumentError,
  NotConfiguredError,
  NotFoundError,
  PermissionError,
  RecVectorError,
  createRecEngine,
} from '../dist/index.js';

import { APP_URL, BARE_URL, NONE_URL, NOEXT_URL, TEST_URL, WORKER_URL, urlAs } from './helpers.mjs';

let rec;
before(() => {
  rec = createRecEngine({ connectionString: TEST_URL });
});
after(() => rec.close());

/** assert.rejects with the class and the fields that matter. */
async function rejectsWith(promise, Class, fields) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Class, `expected ${Class.name}, got ${err?.constructor?.name}: ${err?.message}`);
    assert.ok(err instanceof RecVectorError);
    assert.equal(err.name, Class.name);
    for (const [key, value] of Object.entries(fields)) {
      if (value instanceof RegExp) assert.match(String(err[key]), value, key);
      else assert.equal(err[key], value, key);
    }
    return true;
  });
}

describe('errors from the extension', () => {
  it('k = 0 is an InvalidArgumentError with RecVector\'s hint', () =>
    rejectsWith(rec.recommend({ userId: 1, topK: 0 }), InvalidArgumentError, {
      message: 'k must be between 1 and 10000, got 0',
      sqlstate: '22023',
      hint: /k => 10/,
      retryable: false,
    }));

  it('lambda outside [0, 1] is an InvalidArgumentError', () =>
    rejectsWith(rec.recommend({ userId: 1, lambda: 2 }), InvalidArgumentError, { sqlstate: '22023', message: /lambda/ }));

  it('a fractional topK is an InvalidArgumentError (22P02)', () =>
    rejectsWith(rec.recommend({ userId: 1, topK: 2.5 }), InvalidArgumentError, { sqlstate: '22P02' }));

  it('an unknown filter is a NotFoundError with a hint', () =>
    rejectsWith(rec.recommend({ userId: 1, filter: 'no_such_filter' }), NotFoundError, {
      sqlstate: '42704',
      message: "unknown filter 'no_such_filter'",
      hint: /set_filter/,
    }));

  it('similar() on an entity without a vector is a NotFoundError', () =>
    rejectsWith(rec.similar({ entityId: 999 }), NotFoundError, { sqlstate: 'P0002', hint: /bootstrap/ }));

  it('explain() takes the same options and refuses the same values as recommend()', async () => {
    await rejectsWith(rec.explain({ userId: 1, filter: 'no_such_filter' }), NotFoundError, { sqlstate: '42704', message: /unknown filter/ });
    await rejectsWith(rec.explain({ userId: 11, gamma: -1 }), InvalidArgumentError, { sqlstate: '22023', message: /must not be negative/ });
    await rejectsWith(rec.explain({ userId: 1, topK: 0 }), InvalidArgumentError, { sqlstate: '22023', message: /^k must be/ });
    await rejectsWith(rec.explain({ userId: 1, reasons: -1 }), InvalidArgumentError, { sqlstate: '22023', message: /reasons/ });
  });

  it("similar() with a mode other than content, cf or hybrid is an InvalidArgumentError", () =>
    rejectsWith(rec.similar({ entityId: 1, mode: 'fast' }), InvalidArgumentError, {
      sqlstate: '22023',
      message: "mode must be content, cf or hybrid, got 'fast'",
      hint: /cf: the entities the same users liked/,
    }));

  it('evaluate() refuses an unknown method', () =>
    rejectsWith(rec.evaluate({ methods: ['recvector', 'nope'] }), InvalidArgumentError, { sqlstate: '22023', message: /unknown methods/ }));

  it('no mapping loaded is a NotConfiguredError', async () => {
    const bare = createRecEngine({ connectionString: BARE_URL });
    try {
      await rejectsWith(bare.recommend({ userId: 1 }), NotConfiguredError, {
        sqlstate: '55000',
        message: 'RecVector has no mapping loaded',
        hint: /set_schema/,
      });
      await rejectsWith(bare.logInteraction({ userId: 1, entityId: 2 }), NotConfiguredError, { sqlstate: '55000' });
      const status = await bare.status();
      assert.equal(status.mappingLoadedAt, null);
      assert.equal(status.entityVectors, 0);
    } finally {
      await bare.close();
    }
  });

  it('a database without the extension is a NotConfiguredError telling how to install it', async () => {
    const none = createRecEngine({ connectionString: NOEXT_URL });
    try {
      await rejectsWith(none.recommend({ userId: 1 }), NotConfiguredError, { hint: /CREATE EXTENSION recvector/ });
      await rejectsWith(none.status(), NotConfiguredError, { message: /not installed/, hint: /CREATE EXTENSION recvector/ });
    } finally {
      await none.close();
    }
  });
});

describe('interactions logInteraction() refuses', () => {
  // Every refusal is a 22023 from recvector.log_interaction, before anything is stored.
  const refused = (params, message) =>
    rejectsWith(rec.logInteraction({ userId: 12, entityId: 1, ...params }), InvalidArgumentError, { sqlstate: '22023', message });
  const day = 24 * 3600 * 1000;

  it('a weight outside [-100, 100] or NaN', async () => {
    await refused({ weight: 100.5 }, /weight must be a number from -100 to 100, got 100.5/);
    await refused({ weight: -101 }, /weight must be a number from -100 to 100/);
    await refused({ weight: Number.NaN }, /weight must be a number from -100 to 100, got NaN/);
  });

  it('a time that is infinite, before 1900 or more than a day ahead', async () => {
    await refused({ at: 'infinity' }, /occurred_at must be a real time/);
    await refused({ at: new Date('1899-12-31T00:00:00Z') }, /occurred_at must be a real time from 1900/);
    await refused({ at: new Date(Date.now() + 2 * day) }, /up to one day ahead/);
  });

  it('ids or a kind over 1024 bytes', async () => {
    await refused({ entityId: 'x'.repeat(1025) }, /at most 1024 bytes/);
    await refused({ userId: 'é'.repeat(513) }, /at most 1024 bytes/); // 1026 bytes in UTF-8
    await refused({ kind: 'k'.repeat(1025) }, /at most 1024 bytes/);
  });

  it('and accepts the limits themselves (checked in a transaction rolled back)', async () => {
    const client = new pg.Client({ connectionString: TEST_URL });
    client.on('notice', () => {});
    await client.connect();
    try {
      const inTx = createRecEngine({ client });
      await client.query('BEGIN');
      await inTx.logInteraction({ userId: 12, entityId: 'x'.repeat(1024), kind: 'limit', weight: 100, at: new Date('1900-01-02T00:00:00Z') });
      await inTx.logInteraction({ userId: 12, entityId: 2, kind: 'limit', weight: -100, at: new Date(Date.now() + day - 600_000) });
      const { rows } = await client.query("SELECT weight FROM recvector.events WHERE kind = 'limit' ORDER BY weight");
      assert.deepEqual(rows.map((r) => r.weight), [-100, 100]);
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      await client.end();
    }
  });
});

describe('privileges (RecVector 0.3.0: recvector_app, recvector_worker)', () => {
  // test/run.mjs creates the three LOGIN roles: granted recvector_app, granted recvector_worker, and neither.
  let app;
  let worker;
  let none;
  before(() => {
    app = createRecEngine({ connectionString: APP_URL });
    worker = createRecEngine({ connectionString: WORKER_URL });
    none = createRecEngine({ connectionString: NONE_URL });
  });
  after(() => Promise.all([app.close(), worker.close(), none.close()]));

  const denied = (promise) => rejectsWith(promise, PermissionError, { sqlstate: '42501', message: /^permission denied for/, retryable: false });

  it('a role without recvector_app gets a PermissionError from every call', async () => {
    await denied(none.recommend({ userId: 1, topK: 2 }));
    await denied(none.similar({ entityId: 1, topK: 2 }));
    await denied(none.explain({ userId: 1, topK: 2 }));
    await denied(none.logInteraction({ userId: 10, entityId: 1, kind: 'denied' }));
    await denied(none.status());
    await denied(none.evaluate({ topK: 2 }));
  });

  it('a role granted recvector_app may recommend, find similar, explain and log', async () => {
    assert.deepEqual(await app.recommend({ userId: 1, topK: 3, gamma: 0.5 }), await rec.recommend({ userId: 1, topK: 3, gamma: 0.5 }));
    assert.deepEqual(await app.similar({ entityId: 1, topK: 2, mode: 'hybrid' }), await rec.similar({ entityId: 1, topK: 2, mode: 'hybrid' }));
    assert.deepEqual(await app.explain({ userId: 1, topK: 2, reasons: 2 }), await rec.explain({ userId: 1, topK: 2, reasons: 2 }));
    await app.logInteraction({ userId: 10, entityId: 1, kind: 'granted' });
    const admin = new pg.Client({ connectionString: TEST_URL });
    await admin.connect();
    try {
      const { rows } = await admin.query("SELECT count(*)::int AS n FROM recvector.events WHERE user_id = '10' AND kind = 'granted'");
      assert.equal(rows[0].n, 1);
    } finally {
      await admin.end();
    }
  });

  it('but not status() (recvector_worker) nor the admin functions evaluate() and tune()', async () => {
    await denied(app.status());
    await denied(app.evaluate({ topK: 2 }));
    await denied(app.tune({ timeBudget: 1, store: false }));
  });

  it('a role granted recvector_worker may read status(), and nothing of recvector_app', async () => {
    const s = await worker.status();
    assert.equal(s.entityVectors, 40);
    await denied(worker.recommend({ userId: 1, topK: 2 }));
    await denied(worker.logInteraction({ userId: 10, entityId: 1 }));
  });
});

describe('connection errors', () => {
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const leaks = (err, secret) => {
    const texts = [err.message, err.detail, err.hint, err.stack, inspect(err, { depth: 5 }), JSON.stringify(err)];
    return texts.some((t) => t !== undefined && t.includes(secret));
  };

  it('an unreachable server is a retryable ConnectionError that does not show the password', async () => {
    const cs = `postgres://postgres:${password}@127.0.0.1:1/db`;
    const engine = createRecEngine({ connectionString: cs });
    try {
      await assert.rejects(engine.recommend({ userId: 1 }), (err) => {
        assert.ok(err instanceof ConnectionError, err.message);
        assert.equal(err.retryable, true);
        assert.ok(!leaks(err, password), 'password in the error');
        assert.ok(!inspect(engine).includes(password) && !JSON.stringify(engine).includes(password));
        return true;
      });
    } finally {
      await engine.close();
    }
  });

  it('an invalid connection string is a ConnectionError that does not repeat it', async () => {
    const engine = createRecEngine({ connectionString: `postgres://postgres:${password}@127.0.0.1:notaport/db` });
    try {
      await assert.rejects(engine.status(), (err) => {
        assert.ok(err instanceof ConnectionError, err.message);
        assert.equal(err.retryable, false);
        assert.equal(err.message, 'invalid connection string');
        assert.ok(!leaks(err, password));
        return true;
      });
    } finally {
      await engine.close();
    }
  });

  it('a database that does not exist is a ConnectionError that is not retryable', async () => {
    const engine = createRecEngine({ connectionString: `${NOEXT_URL}_missing` });
    try {
      await rejectsWith(engine.status(), ConnectionError, { sqlstate: '3D000', retryable: false });
    } finally {
      await engine.close();
    }
  });

  it('the password is masked even where the server repeats it', async () => {
    // A database named like the password: the server's message names it.
    const url = new URL(urlAs(TEST_URL, 'postgres', password));
    url.pathname = `/${password}`;
    const engine = createRecEngine({ connectionString: url.toString() });
    try {
      await assert.rejects(engine.status(), (err) => {
        assert.ok(err instanceof ConnectionError);
        assert.equal(err.message, 'database "***" does not exist');
        assert.equal(err.cause, undefined, 'the unmasked original is not chained');
        assert.ok(!leaks(err, password));
        return true;
      });
    } finally {
      await engine.close();
    }
  });
});

describe('SQLSTATEs mapped from any pg client', () => {
  // A stand-in client that fails every query the way pg reports a server error.
  const failing = (code, message) =>
    createRecEngine({
      client: {
        query: async () => {
          throw Object.assign(new Error(message), { code, severity: 'ERROR', detail: 'd', hint: 'h' });
        },
      },
    });
  const cases = [
    ['40001', RecVectorError, true],
    ['40P01', RecVectorError, true],
    ['55P03', RecVectorError, true],
    ['57014', RecVectorError, true],
    ['08006', ConnectionError, true],
    ['57P01', ConnectionError, true],
    ['28P01', ConnectionError, false],
    ['42501', PermissionError, false],
    ['55000', NotConfiguredError, false],
    ['22023', InvalidArgumentError, false],
    ['XX000', RecVectorError, false],
  ];
  for (const [code, Class, retryable] of cases) {
    it(`${code} -> ${Class.name}, retryable ${retryable}`, () =>
      rejectsWith(failing(code, `failure ${code}`).status(), Class, {
        sqlstate: code,
        retryable,
        message: `failure ${code}`,
        detail: 'd',
        hint: 'h',
      }));
  }

  it('socket errors are retryable ConnectionErrors', () =>
    rejectsWith(
      createRecEngine({
        client: { query: async () => Promise.reject(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })) },
      }).status(),
      ConnectionError,
      { retryable: true, sqlstate: undefined },
    ));
});

describe('arguments checked before any SQL', () => {
  it('ids must be strings, numbers or bigints', async () => {
    await rejectsWith(rec.recommend({ userId: null }), InvalidArgumentError, { message: /userId/, sqlstate: undefined });
    await rejectsWith(rec.recommend({ userId: { id: 1 } }), InvalidArgumentError, { message: /userId/ });
    await rejectsWith(rec.recommend({ userId: NaN }), InvalidArgumentError, { message: /finite/ });
    await rejectsWith(rec.similar({ entityId: 2 ** 60 }), InvalidArgumentError, { hint: /bigint/ });
    await rejectsWith(rec.recommend({ userId: 1, exclude: [1, undefined] }), InvalidArgumentError, { message: /exclude\[1\]/ });
  });

  it('option names that are not identifiers are refused (nothing is injected)', async () => {
    const evil = { 'k => 1) ; DROP TABLE film; --': 1 };
    await rejectsWith(rec.recommend({ userId: 1, options: evil }), InvalidArgumentError, { message: /not a valid argument name/ });
    await rejectsWith(rec.recommend({ userId: 1, options: { 'Bad"Name': 1 } }), InvalidArgumentError, {});
  });

  it('an option the installed function does not have names the ones it has', async () => {
    await rejectsWith(rec.recommend({ userId: 1, options: { variant: 'b' } }), InvalidArgumentError, {
      message: 'public.rec_recommend has no argument "variant"',
      hint: /^Its arguments are: user_id, k, lambda, alpha, beta, candidate_pool, exploration, seed, exclude_seen, filter, exclude, gamma, page\./,
      sqlstate: undefined,
    });
    // explain has every option of recommend but exclude_seen (it always leaves seen entities out).
    await rejectsWith(rec.explain({ userId: 1, options: { excludeSeen: false } }), InvalidArgumentError, {
      message: 'recvector.explain has no argument "exclude_seen"',
      hint: /reasons, alpha, beta, gamma, candidate_pool, filter, exclude/,
    });
  });

  it('an argument given twice is refused', () =>
    rejectsWith(rec.recommend({ userId: 1, topK: 3, options: { k: 4 } }), InvalidArgumentError, { message: /given twice/ }));

  it('an invalid Date is refused', () =>
    rejectsWith(rec.logInteraction({ userId: 1, entityId: 1, at: new Date('nope') }), InvalidArgumentError, {
      message: /invalid Date/,
    }));

  it('createRecEngine needs exactly one of connectionString, pool, client', () => {
    assert.throws(() => createRecEngine({}), RecVectorError);
    assert.throws(() => createRecEngine({ connectionString: TEST_URL, client: {} }), /exactly one/);
  });
});
