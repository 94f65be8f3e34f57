// Other versions of the SQL API, as stand-ins in an otherwise empty database.
//
// A later RecVector adds named arguments (page, variant, flavour) and result columns: the client
// passes options through by name, casts them to the catalog's types and camelCases every column it
// gets back, without a new client release. An older one lacks arguments the client has (explain
// before 0.3.0 had no alpha, gamma, filter...): those are refused before any SQL, naming the
// arguments the installed function has.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { InvalidArgumentError, createRecEngine } from '../dist/index.js';
import { NEXT_URL, sqlPool } from './helpers.mjs';

const STAND_INS = `
CREATE SCHEMA IF NOT EXISTS recvector;
CREATE OR REPLACE FUNCTION public.rec_recommend(
    user_id text, k integer DEFAULT 10, lambda double precision DEFAULT NULL, gamma double precision DEFAULT NULL,
    page integer DEFAULT 1, variant text DEFAULT 'a', exclude text[] DEFAULT NULL, seed bigint DEFAULT NULL)
RETURNS TABLE (entity_id text, score double precision, variant_name text, page_number integer)
LANGUAGE sql AS $$
    SELECT user_id || ':' || i || ':' || coalesce(array_to_string(exclude, '|'), '') || ':' || coalesce(seed::text, ''),
           coalesce(gamma, 0) + i, variant, page
    FROM generate_series(1, k) AS i
    ORDER BY i DESC
$$;
CREATE OR REPLACE FUNCTION public.rec_similar(entity text, k integer DEFAULT 10, mode text DEFAULT 'cosine')
RETURNS TABLE (entity_id text, score double precision, mode text)
LANGUAGE sql AS $$ SELECT entity || '~', 1.0::double precision, mode $$;
-- recvector.explain as 0.2.0 had it.
CREATE OR REPLACE FUNCTION recvector.explain(
    user_id text, k integer DEFAULT 10, lambda double precision DEFAULT NULL, exploration double precision DEFAULT NULL,
    seed bigint DEFAULT NULL, reasons integer DEFAULT 3)
RETURNS TABLE (rank integer, entity_id text, score double precision, similarity double precision,
               popularity_term double precision, exploration_term double precision, mmr_penalty double precision,
               because jsonb)
LANGUAGE sql AS $$
    SELECT 1, user_id || ':' || k, 0.5::double precision, 0.5::double precision, 0::double precision,
           0::double precision, 0::double precision,
           '[{"entity_id": "e1", "kind": "rental", "at": "2024-01-01T00:00:00+00:00", "contribution": 0.25}]'::jsonb
$$;
`;

let sql;
let rec;
before(async () => {
  sql = sqlPool(NEXT_URL);
  await sql.query(STAND_INS);
  rec = createRecEngine({ connectionString: NEXT_URL });
});
after(async () => {
  await rec.close();
  await sql.end();
});

describe('a later version of the SQL API', () => {
  it('gets new options by name, cast to the argument types, and new columns in camelCase', async () => {
    const rows = await rec.recommend({
      userId: 7n,
      topK: 3,
      exclude: [1, 2n],
      seed: 9007199254740993n,
      gamma: 0.5,
      options: { page: 2, variant: 'b' },
    });
    assert.deepEqual(rows, [
      { entityId: '7:3:1|2:9007199254740993', score: 3.5, variantName: 'b', pageNumber: 2 },
      { entityId: '7:2:1|2:9007199254740993', score: 2.5, variantName: 'b', pageNumber: 2 },
      { entityId: '7:1:1|2:9007199254740993', score: 1.5, variantName: 'b', pageNumber: 2 },
    ]);
  });

  it('leaves options that are not set to the SQL defaults', async () => {
    const [row] = await rec.recommend({ userId: 'u', topK: 1 });
    assert.deepEqual(row, { entityId: 'u:1::', score: 1, variantName: 'a', pageNumber: 1 });
  });

  it('sends mode as the installed function declares it, a later mode included', async () => {
    assert.deepEqual(await rec.similar({ entityId: 5, mode: 'dot' }), [{ entityId: '5~', score: 1, mode: 'dot' }]);
  });

  it('refuses options this version does not have, before running any SQL', async () => {
    const noAlpha = (err) => err instanceof InvalidArgumentError && err.sqlstate === undefined && /has no argument "alpha"/.test(err.message);
    await assert.rejects(rec.recommend({ userId: 1, options: { alpha: 1 } }), noAlpha);
    await assert.rejects(rec.recommend({ userId: 1, alpha: 1 }), noAlpha);
  });

  it('a value that does not fit the argument type is an InvalidArgumentError from the server', () =>
    assert.rejects(rec.recommend({ userId: 1, options: { page: 'two' } }), (err) => err instanceof InvalidArgumentError && err.sqlstate === '22P02'));

  it('sees a changed signature after a failed call re-reads the catalog', async () => {
    // Drop and recreate rec_similar without mode: the cached signature is stale; the call fails with
    // 42883 and the next one uses the new signature.
    await sql.query('DROP FUNCTION public.rec_similar(text, integer, text)');
    await sql.query(`CREATE FUNCTION public.rec_similar(entity text, k integer DEFAULT 10, flavour text DEFAULT 'x')
                     RETURNS TABLE (entity_id text, score double precision, flavour text)
                     LANGUAGE sql AS $$ SELECT entity, 0.5::double precision, flavour $$`);
    await assert.rejects(rec.similar({ entityId: 5, mode: 'dot' }), (err) => err.sqlstate === '42883');
    assert.deepEqual(await rec.similar({ entityId: 5, options: { flavour: 'y' } }), [{ entityId: '5', score: 0.5, flavour: 'y' }]);
  });
});

describe('an older version of the SQL API (explain of 0.2.0)', () => {
  it('refuses the options it does not have, naming those it has', () =>
    assert.rejects(rec.explain({ userId: 1, gamma: 0.5 }), (err) => {
      assert.ok(err instanceof InvalidArgumentError);
      assert.equal(err.message, 'recvector.explain has no argument "gamma"');
      assert.equal(err.hint, 'Its arguments are: user_id, k, lambda, exploration, seed, reasons. Newer options need a newer RecVector.');
      return true;
    }));

  it('still maps the rows it returns (without sources or collaborativeTerm), because camelCased', async () => {
    const [row] = await rec.explain({ userId: 'u', topK: 2, reasons: 1 });
    assert.deepEqual(row, {
      rank: 1,
      entityId: 'u:2',
      score: 0.5,
      similarity: 0.5,
      popularityTerm: 0,
      explorationTerm: 0,
      mmrPenalty: 0,
      because: [{ entityId: 'e1', kind: 'rental', at: '2024-01-01T00:00:00+00:00', contribution: 0.25 }],
    });
  });
});
