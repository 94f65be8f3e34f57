// Compiled, never run (`npm run typecheck`): the public types as a TypeScript user meets them,
// with real `pg` objects.
import pg from 'pg';

import {
  InvalidArgumentError,
  RecVectorError,
  createRecEngine,
  type EvaluationRow,
  type Explanation,
  type Reason,
  type Recommendation,
  type Source,
  type Status,
  type TuneReport,
} from '../dist/index.js';

export async function usage(): Promise<void> {
  const rec = createRecEngine({ connectionString: 'postgres://localhost/app' });
  createRecEngine({ pool: new pg.Pool() });
  const client = new pg.Client();
  createRecEngine({ client });
  const pool = new pg.Pool();
  createRecEngine({ client: await pool.connect() });

  await rec.logInteraction({ userId: 1, entityId: 'abc', kind: 'like', at: new Date(), weight: 1 });
  const recs: Recommendation[] = await rec.recommend({
    userId: 42n, topK: 10, lambda: 0.7, exploration: 0.1, seed: 7, filter: 'cheap', exclude: [1, '2', 3n],
    alpha: 0.5, beta: 0.1, gamma: 0.2, candidatePool: 100, excludeSeen: false,
    options: { page: 2, variant: 'b' },
  });
  const first: string | undefined = recs[0]?.entityId;
  const score: number | undefined = recs[0]?.score;
  const similar: Recommendation[] = await rec.similar({ entityId: 1, topK: 5, mode: 'cf' });
  await rec.similar({ entityId: 1, mode: 'a-later-mode', options: { flavour: 'x' } });
  const why: Explanation[] = await rec.explain({
    userId: '1', topK: 3, lambda: 1, exploration: 0.1, seed: 2n, reasons: 5, alpha: 0.5, beta: 0.1, gamma: 1,
    candidatePool: 50, filter: 'cheap', exclude: ['9'],
  });
  const reason: Reason | undefined = why[0]?.because[0];
  const because: string | undefined = reason?.entityId;
  const via: 'content' | 'collaborative' | string | undefined = reason?.via;
  const contribution: number | null | undefined = reason?.contribution;
  const kind: string | undefined = reason?.kind;
  const sources: Source[] | undefined = why[0]?.sources;
  const collaborative: number | undefined = why[0]?.collaborativeTerm;
  const similarity: number | null | undefined = why[0]?.similarity;
  const evaluation: EvaluationRow[] = await rec.evaluate({
    topK: 10, maxUsers: 100, seed: 1, methods: ['recvector', 'ease'], protocol: 'last', part: 'test', cutoff: new Date(),
    gamma: 0.5, halfLifeDays: 30, minPositives: 2, interests: 3,
  });
  await rec.evaluate();
  const ndcg: number | undefined = evaluation[0]?.ndcg;
  const difference: number | null | undefined = evaluation[1]?.recvectorMinusThis;
  const report: TuneReport = await rec.tune({ timeBudget: '2 minutes', store: false });
  await rec.tune({ timeBudget: 90, topK: 10, maxUsers: 500, seed: 3 });
  const stored: boolean = report.stored;
  const status: Status = await rec.status();
  const vectors: number = status.entityVectors;
  try {
    await rec.close();
  } catch (err) {
    if (err instanceof InvalidArgumentError) console.log(err.hint);
    if (err instanceof RecVectorError) console.log(err.sqlstate, err.retryable, err.detail);
  }
  void [first, score, similar, because, via, contribution, kind, sources, collaborative, similarity, ndcg, difference, stored, vectors];
}

// @ts-expect-error: exactly one of connectionString, pool, client
createRecEngine({ connectionString: 'x', pool: new pg.Pool() });
// @ts-expect-error: ids are strings, numbers or bigints
void createRecEngine({ connectionString: 'x' }).recommend({ userId: { id: 1 } });
// @ts-expect-error: contribution may be null
void ((r: Reason): number => r.contribution);
// @ts-expect-error: explain always leaves seen entities out (no exclude_seen)
void createRecEngine({ connectionString: 'x' }).explain({ userId: 1, excludeSeen: false });
// @ts-expect-error: methods are strings
void createRecEngine({ connectionString: 'x' }).evaluate({ methods: [1] });
