/** Public types of the client: connection options, call parameters and results. */

/** A user or entity id. RecVector compares ids as text; numbers must be safe integers (use bigint or string beyond 2^53). */
export type Id = string | number | bigint;

/** Extra named arguments for the SQL function, camelCase or snake_case (`{ candidatePool: 50 }`). */
export type SqlOptions = Record<string, unknown>;

/** What the engine needs of a `pg` Pool, Client or PoolClient (structural, so no @types/pg is required). */
export interface Queryable {
  query(config: {
    text: string;
    values?: unknown[];
    types?: { getTypeParser: (oid: number, format?: any) => any };
  }): Promise<{ rows: any[] }>;
}

/** A `pg` Pool as the engine uses it. */
export interface PoolLike extends Queryable {
  end(): Promise<void>;
}

export type RecEngineConfig =
  /** The engine creates a `pg` Pool and closes it in close(). */
  | { connectionString: string; pool?: never; client?: never }
  /** A Pool the caller owns: close() leaves it open. */
  | { pool: Queryable; connectionString?: never; client?: never }
  /** A connected `pg` Client or PoolClient the caller owns: close() leaves it open. */
  | { client: Queryable; connectionString?: never; pool?: never };

export interface LogInteractionParams {
  userId: Id;
  entityId: Id;
  /** Interaction kind (at most 1024 bytes); default 'interaction'. Sets the weight through the mapping's `events.weights`. */
  kind?: string;
  /** When it happened: from 1900 up to one day ahead; default now() on the server. */
  at?: Date | string;
  /** Explicit weight in [-100, 100] (not NaN); default from the mapping's events, else 1. */
  weight?: number;
  options?: SqlOptions;
}

/** The scoring and selection arguments rec_recommend and recvector.explain share. */
export interface RankingParams {
  userId: Id;
  /** Number of results (`k`, 1 to 10000); default 10. */
  topK?: number;
  /** MMR trade-off in [0, 1]: 1 = relevance only, lower = more diverse. Default 0.9 (or the mapping's scoring). */
  lambda?: number;
  /** Weight of a noise term in [0, 1]; with `seed` the noise is reproducible. */
  exploration?: number;
  seed?: number | bigint;
  /** Weight of the similarity to the user's interests (0..1 term); default 0.5 (or the mapping's scoring). */
  alpha?: number;
  /** Weight of the popularity term (0..1); default 0.1 (or the mapping's scoring). */
  beta?: number;
  /** Weight of the collaborative term (0..1: the entities liked by users with the same history); default 1 (or the mapping's scoring). 0 turns it off. */
  gamma?: number;
  /** Content candidates searched before ranking; default 100 (at least topK). */
  candidatePool?: number;
  /** Name of a filter made with `recvector.set_filter(name, expression)`. */
  filter?: string;
  /** Entity ids never to return. */
  exclude?: readonly Id[];
  /** Arguments of later RecVector versions, passed through by name (`{ page: 2 }`). */
  options?: SqlOptions;
}

export interface RecommendParams extends RankingParams {
  /** Leave out entities the user already interacted with; default true. */
  excludeSeen?: boolean;
  /** Page n (from 1): the next topK results after pages 1 .. n-1, never overlapping them; default 1. */
  page?: number;
}

export interface HideParams {
  userId: Id;
  entityId: Id;
  /** Hidden until this time; for good when left out. */
  until?: Date;
  options?: SqlOptions;
}

/** How rec_similar finds neighbours: `content` (cosine of the stored vectors, the default), `cf` (the entities the same users liked), `hybrid` (half each). */
export type SimilarMode = 'content' | 'cf' | 'hybrid' | (string & {});

export interface SimilarParams {
  entityId: Id;
  /** Number of results (`k`); default 10. */
  topK?: number;
  /** Default 'content'. */
  mode?: SimilarMode;
  options?: SqlOptions;
}

/** recvector.explain takes rec_recommend's arguments (seen entities are always left out) and `reasons`. */
export interface ExplainParams extends RankingParams {
  /** Contributing interactions listed per result (`because`); default 3. */
  reasons?: number;
}

/** One result, in rank order. `score` is the relevance (with lambda < 1 it need not decrease with rank). Columns added by later versions appear camelCased. */
export type Recommendation = { entityId: string; score: number } & Record<string, unknown>;

/** What brought a candidate: its content neighbours, collaborative neighbours, or the popular list. */
export type Source = 'content' | 'collaborative' | 'popular' | (string & {});

/** One of the user's interactions that contributed to a result. */
export interface Reason {
  /** The entity the user interacted with. */
  entityId: string;
  /** `content`: its vector is near the result; `collaborative`: its neighbour list holds the result. */
  via: 'content' | 'collaborative' | (string & {});
  /** Its part of the similarity (content) or of the collaborative term; null if it cannot be apportioned. */
  contribution: number | null;
  /** The interaction's kind (`via: 'content'` only). */
  kind?: string;
  /** When it happened, ISO-8601 as the server's JSON has it (`via: 'content'` only). */
  at?: string;
  [key: string]: unknown;
}

/**
 * One explained result, in rank order: the same entities and scores as recommend() with the same
 * arguments. score = alpha * similarity + popularityTerm + collaborativeTerm + explorationTerm (the
 * terms come weighted, similarity does not); mmrPenalty is what diversification subtracted when
 * choosing it. A user without a profile gets the popular list: similarity null, sources ['popular'],
 * because [].
 */
export type Explanation = {
  rank: number;
  entityId: string;
  score: number;
  similarity: number | null;
  popularityTerm: number;
  collaborativeTerm: number;
  explorationTerm: number;
  mmrPenalty: number;
  /** The candidate lists that brought it (the server's comma-separated text, split). */
  sources: Source[];
  because: Reason[];
} & Record<string, unknown>;

/** Arguments of recvector.evaluate (an admin function: offline evaluation on the database's own history). */
export interface EvaluateParams {
  /** Cut-off of the metrics (`k`, 1 to 1000); default 10. */
  topK?: number;
  /** Evaluate at most this many users; default all. */
  maxUsers?: number;
  /** Scoring of the RecVector method; defaults from the mapping. */
  lambda?: number;
  alpha?: number;
  beta?: number;
  gamma?: number;
  candidatePool?: number;
  /** Seed of the random split, the random baseline and the bootstrap; default 42. */
  seed?: number | bigint;
  /** Users need at least this many positive interactions; default 2. */
  minPositives?: number;
  /** `validation` or `test` keep one of two disjoint halves of the users; default 'all'. */
  part?: 'all' | 'validation' | 'test' | (string & {});
  /** Half-life of interactions in days for the profiles; default the mapping's. */
  halfLifeDays?: number;
  /** Hold out every interaction from this time on (instead of one per user). */
  cutoff?: Date | string;
  /** `last` (the most recent interaction), `random`, or `auto` (last for dated data); default 'auto'. */
  protocol?: 'auto' | 'last' | 'random' | (string & {});
  /** Number of interests per profile; default the mapping's. */
  interests?: number;
  /** Default all: recvector, popularity, random, itemknn, ease. */
  methods?: readonly string[];
  options?: SqlOptions;
}

/** One method's results in recvector.evaluate; the bootstrap intervals are 95 %. */
export type EvaluationRow = {
  method: string;
  users: number;
  recall: number;
  ndcg: number;
  mrr: number;
  coverage: number;
  /** Mean cosine between the entities of a list (NaN when no list has two). */
  intraListSimilarity: number;
  /** Mean log-popularity of the recommended entities relative to the catalogue. */
  popularityBias: number;
  ndcgLow: number;
  ndcgHigh: number;
  /** NDCG of RecVector minus this method's, paired by user (null in RecVector's own row). */
  recvectorMinusThis: number | null;
  differenceLow: number | null;
  differenceHigh: number | null;
} & Record<string, unknown>;

/** Arguments of recvector.tune (an admin function: searches scoring settings on the database's own history). */
export interface TuneParams {
  /** Time allowed: an interval ('10 minutes') or a number of seconds; default 10 minutes. */
  timeBudget?: string | number;
  topK?: number;
  /** Default 2000. */
  maxUsers?: number;
  seed?: number | bigint;
  /** Store the settings in the mapping when they win on validation; default true. */
  store?: boolean;
  options?: SqlOptions;
}

/** recvector.tune's report, as the server's JSON has it (snake_case: `tuned` is a mapping fragment). */
export type TuneReport = {
  users: number;
  protocol: string;
  k: number;
  current: Record<string, unknown>;
  tuned: Record<string, unknown>;
  validation: Record<string, unknown>;
  stored: boolean;
  decision: string;
} & Record<string, unknown>;

/** A PostgreSQL interval as `pg` parses it (postgres-interval). */
export interface Interval {
  years?: number;
  months?: number;
  days?: number;
  hours?: number;
  minutes?: number;
  seconds?: number;
  milliseconds?: number;
  toISOString(): string;
}

export type Status = {
  version: string | null;
  mappingLoadedAt: Date | null;
  strategy: string | null;
  capture: string | null;
  model: string | null;
  entityVectors: number;
  profiles: number;
  pendingInteractions: number;
  oldestPending: Interval | null;
  queuedProfiles: number;
  queuedEntities: number;
  givenUp: number;
  failedInteractions: number;
  autoLogging: string[];
} & Record<string, unknown>;
