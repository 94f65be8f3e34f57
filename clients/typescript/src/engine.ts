/** The engine: RecVector's SQL API as typed calls over a `pg` Pool or Client. */
import pg from 'pg';

import { InvalidArgumentError, RecVectorError, toRecVectorError } from './errors.js';
import {
  CATALOG_SQL,
  camelRow,
  idList,
  idText,
  namedCall,
  notInstalled,
  optionArgs,
  parseCatalog,
  splitList,
  typeParsers,
  type Catalog,
  type CatalogRow,
} from './sql.js';
import type {
  EvaluateParams,
  EvaluationRow,
  ExplainParams,
  HideParams,
  Explanation,
  LogInteractionParams,
  PoolLike,
  Queryable,
  Reason,
  RankingParams,
  RecEngineConfig,
  RecommendParams,
  Recommendation,
  SimilarParams,
  Status,
  TuneParams,
  TuneReport,
} from './types.js';

/** SQLSTATEs after which the cached function signatures may be stale (extension updated or reinstalled). */
const STALE_CATALOG = new Set(['42883', '3F000', '42P01']);

/** Holds no connection details in public fields: logging an engine shows none. */
export class RecEngine {
  readonly #db: Queryable;
  readonly #ownedPool: PoolLike | undefined;
  readonly #secrets: string[];
  readonly #types = typeParsers(pg.types);
  #catalog: Promise<Catalog> | undefined;
  #closed = false;

  constructor(config: RecEngineConfig) {
    if (config === null || typeof config !== 'object') {
      throw new RecVectorError('createRecEngine needs { connectionString }, { pool } or { client }');
    }
    const given = (['connectionString', 'pool', 'client'] as const).filter((k) => config[k] !== undefined);
    if (given.length !== 1) {
      throw new RecVectorError(`createRecEngine needs exactly one of connectionString, pool, client (got ${given.join(', ') || 'none'})`);
    }
    if (config.connectionString !== undefined) {
      this.#secrets = secretsOf(config.connectionString);
      const pool = new pg.Pool({ connectionString: config.connectionString });
      pool.on('error', () => {
        // An idle connection broke: the next query reports it; without a listener Node would exit.
      });
      this.#db = pool;
      this.#ownedPool = pool;
    } else {
      this.#secrets = [];
      this.#db = (config.pool ?? config.client) as Queryable;
      this.#ownedPool = undefined;
    }
  }

  /** Records an interaction the application does not store itself (recvector.log_interaction). */
  async logInteraction(params: LogInteractionParams): Promise<void> {
    await this.#call('log_interaction', [
      ['user_id', idText(params.userId, 'userId')],
      ['entity_id', idText(params.entityId, 'entityId')],
      ['kind', params.kind],
      ['occurred_at', params.at],
      ['weight', params.weight],
      ...optionArgs(params.options),
    ]);
  }

  /** Top-k recommendations for a user, in rank order (rec_recommend). */
  async recommend(params: RecommendParams): Promise<Recommendation[]> {
    const rows = await this.#call('rec_recommend', [
      ...rankingArgs(params),
      ['exclude_seen', params.excludeSeen],
      ['page', params.page],
      ...optionArgs(params.options),
    ]);
    return rows.map(camelRow) as Recommendation[];
  }

  /** Never recommend this entity to this user, for good or until `until` (recvector.hide). */
  async hide(params: HideParams): Promise<void> {
    await this.#call('hide', [
      ['user_id', idText(params.userId, 'userId')],
      ['entity_id', idText(params.entityId, 'entityId')],
      ['until', params.until],
      ...optionArgs(params.options),
    ]);
  }

  /** Shows a hidden entity to the user again; true if it was hidden (recvector.unhide). */
  async unhide(params: HideParams): Promise<boolean> {
    const rows = await this.#call('unhide', [
      ['user_id', idText(params.userId, 'userId')],
      ['entity_id', idText(params.entityId, 'entityId')],
      ...optionArgs(params.options),
    ]);
    return Object.values(rows[0] ?? {})[0] === true;
  }

  /**
   * The entities most similar to one entity (rec_similar). mode 'content' (default): score = cosine
   * similarity; 'cf': the entities the same users liked, score = neighbour weight; 'hybrid': both.
   */
  async similar(params: SimilarParams): Promise<Recommendation[]> {
    const rows = await this.#call('rec_similar', [
      ['entity', idText(params.entityId, 'entityId')],
      ['k', params.topK],
      ['mode', params.mode],
      ...optionArgs(params.options),
    ]);
    return rows.map(camelRow) as Recommendation[];
  }

  /**
   * recommend()'s results for the same arguments, with their score parts, the candidate lists that
   * brought them and the interactions behind them (recvector.explain). A user without a profile gets
   * the popular list (sources ['popular'], nothing in because).
   */
  async explain(params: ExplainParams): Promise<Explanation[]> {
    const rows = await this.#call('explain', [
      ...rankingArgs(params),
      ['reasons', params.reasons],
      ...optionArgs(params.options),
    ]);
    return rows.map((row) => {
      const out = camelRow(row);
      if ('sources' in out) out.sources = splitList(out.sources);
      if ('because' in out) {
        out.because = Array.isArray(out.because)
          ? out.because.map((r: unknown) =>
              r !== null && typeof r === 'object' ? (camelRow(r as Record<string, unknown>) as Reason) : r,
            )
          : [];
      }
      return out as Explanation;
    });
  }

  /**
   * Offline evaluation on the database's own history (recvector.evaluate): one row per method
   * (RecVector and the baselines) with Recall, NDCG, MRR, coverage and bootstrap intervals.
   * An admin function: not granted to recvector_app.
   */
  async evaluate(params: EvaluateParams = {}): Promise<EvaluationRow[]> {
    const rows = await this.#call('evaluate', [
      ['k', params.topK],
      ['max_users', params.maxUsers],
      ['lambda', params.lambda],
      ['alpha', params.alpha],
      ['beta', params.beta],
      ['gamma', params.gamma],
      ['candidate_pool', params.candidatePool],
      ['seed', params.seed],
      ['min_positives', params.minPositives],
      ['part', params.part],
      ['half_life_days', params.halfLifeDays],
      ['cutoff', params.cutoff],
      ['protocol', params.protocol],
      ['interests', params.interests],
      ['methods', params.methods === undefined ? undefined : [...params.methods]],
      ...optionArgs(params.options),
    ]);
    return rows.map(camelRow) as EvaluationRow[];
  }

  /**
   * Searches the scoring settings on the database's own history within a time budget and stores
   * them in the mapping when they win on validation (recvector.tune). Returns the server's report
   * as is (its keys are snake_case: `tuned` is a mapping fragment). An admin function.
   */
  async tune(params: TuneParams = {}): Promise<TuneReport> {
    const budget = params.timeBudget;
    if (typeof budget === 'number' && !Number.isFinite(budget)) {
      throw new InvalidArgumentError(`timeBudget must be a finite number of seconds, got ${budget}`);
    }
    // A function returning a scalar, called in FROM: one row, one column named after the function.
    const rows = await this.#call('tune', [
      ['time_budget', typeof budget === 'number' ? `${budget} seconds` : budget],
      ['k', params.topK],
      ['max_users', params.maxUsers],
      ['seed', params.seed],
      ['store', params.store],
      ...optionArgs(params.options),
    ]);
    return rows[0]?.tune as TuneReport;
  }

  /** One row on the state of RecVector in this database (recvector.status). */
  async status(): Promise<Status> {
    try {
      const rows = await this.#query('SELECT * FROM recvector.status()', []);
      return camelRow(rows[0] ?? {}) as Status;
    } catch (err) {
      const missing = err instanceof RecVectorError && (err.sqlstate === '3F000' || err.sqlstate === '42883');
      throw missing ? notInstalled(err) : err;
    }
  }

  /** Ends the Pool the engine created from a connection string; a caller's pool or client is left open. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownedPool !== undefined) {
      try {
        await this.#ownedPool.end();
      } catch (err) {
        throw toRecVectorError(err, this.#secrets);
      }
    }
  }

  // -- internals ---------------------------------------------------------------------------------

  /** The installed functions' schemas and argument types, looked up once (again after a failure). */
  #signatures(): Promise<Catalog> {
    if (this.#catalog === undefined) {
      const lookup = this.#query(CATALOG_SQL, []).then((rows) => parseCatalog(rows as unknown as CatalogRow[]));
      this.#catalog = lookup;
      lookup.catch(() => {
        if (this.#catalog === lookup) this.#catalog = undefined;
      });
    }
    return this.#catalog;
  }

  /** Calls one of RecVector's functions in named notation with the arguments that are set. */
  async #call(fn: Parameters<Catalog['signature']>[0], args: [string, unknown][]): Promise<Record<string, unknown>[]> {
    const { text, values } = namedCall((await this.#signatures()).signature(fn), args);
    try {
      return await this.#query(text, values);
    } catch (err) {
      if (err instanceof RecVectorError && err.sqlstate !== undefined && STALE_CATALOG.has(err.sqlstate)) {
        this.#catalog = undefined;
      }
      throw err;
    }
  }

  async #query(text: string, values: unknown[]): Promise<Record<string, unknown>[]> {
    if (this.#closed) throw new RecVectorError('this RecVector engine is closed');
    try {
      const result = await this.#db.query({ text, values, types: this.#types });
      return result.rows as Record<string, unknown>[];
    } catch (err) {
      throw toRecVectorError(err, this.#secrets);
    }
  }
}

/** The arguments rec_recommend and recvector.explain share, as SQL names. */
function rankingArgs(params: RankingParams): [string, unknown][] {
  return [
    ['user_id', idText(params.userId, 'userId')],
    ['k', params.topK],
    ['lambda', params.lambda],
    ['alpha', params.alpha],
    ['beta', params.beta],
    ['gamma', params.gamma],
    ['candidate_pool', params.candidatePool],
    ['exploration', params.exploration],
    ['seed', params.seed],
    ['filter', params.filter],
    ['exclude', idList(params.exclude, 'exclude')],
  ];
}

/** The connection string and its password (raw and URL-decoded), to be kept out of messages. */
function secretsOf(connectionString: string): string[] {
  const secrets = [connectionString];
  try {
    const { password } = new URL(connectionString);
    if (password) secrets.push(password, decodeURIComponent(password));
  } catch {
    // Not a URL: pg rejects it too, as an invalid connection string (the message never repeats it).
  }
  return secrets;
}

/** Creates an engine: `{ connectionString }` (owns a Pool), `{ pool }` or `{ client }` (caller-owned). */
export function createRecEngine(config: RecEngineConfig): RecEngine {
  return new RecEngine(config);
}

