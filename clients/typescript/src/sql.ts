/**
 * SQL and naming helpers: identifier quoting, camelCase <-> snake_case, id and value conversion,
 * the catalog lookup of RecVector's function signatures, and calls in named notation.
 */
import { InvalidArgumentError, NotConfiguredError } from './errors.js';

/** A valid SQL argument name once converted to snake_case: nothing else reaches the SQL text. */
export const ARG_NAME = /^[a-z_][a-z0-9_]*$/;

/** Quotes an identifier: `my"schema` -> `"my""schema"`. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `popularity_term` -> `popularityTerm`. */
export function toCamel(name: string): string {
  return name.replace(/(?<=[a-z0-9])_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** `candidatePool` -> `candidate_pool`; already snake_case names are kept. */
export function toSnake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A row with every column renamed to camelCase (so columns added by later versions come through). */
export function camelRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[toCamel(k)] = v;
  return out;
}

/** A comma-separated list as the server writes it ('content,collaborative'), as an array; null -> []. */
export function splitList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== 'string') return [];
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** An id as RecVector compares it: text. Numbers must be safe integers or finite; bigints are exact. */
export function idText(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidArgumentError(`${what} must be a finite number, got ${value}`);
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      throw new InvalidArgumentError(`${what} ${value} is beyond Number.MAX_SAFE_INTEGER and may have lost digits`, {
        hint: 'Pass large ids as a string or a bigint.',
      });
    }
    return String(value);
  }
  throw new InvalidArgumentError(`${what} must be a string, number or bigint, got ${value === null ? 'null' : typeof value}`);
}

/** Converts a JS value to what `pg` sends for a parameter: ids and bigints as text, Dates as ISO-8601. */
export function bindValue(value: unknown, name: string): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new InvalidArgumentError(`${name} is an invalid Date`);
    return value.toISOString();
  }
  if (Array.isArray(value)) return value.map((v, i) => bindValue(v, `${name}[${i}]`));
  return value;
}

/** One RecVector function as installed: where it lives and its input arguments with their types. */
export interface Signature {
  schema: string;
  name: string;
  args: Map<string, string>;
}

export type RecVectorFunction = 'rec_recommend' | 'rec_similar' | 'explain' | 'log_interaction' | 'hide' | 'unhide' | 'evaluate' | 'tune';

/** The functions the client calls, as installed; `signature` throws if one is missing. */
export interface Catalog {
  signature(fn: RecVectorFunction): Signature;
}

/**
 * Every overload of the functions the client calls, with input argument names and types
 * (format_type, so casts read as the catalog spells them). The rec_* functions live in the
 * schema the extension was created in (public first if there are several); the rest in recvector.
 */
export const CATALOG_SQL = `
SELECT n.nspname AS schema, p.proname AS name,
       coalesce(json_agg(json_build_array(a.name, pg_catalog.format_type(a.type, NULL)) ORDER BY a.ord)
                FILTER (WHERE a.name IS NOT NULL AND a.mode IN ('i', 'b', 'v')), '[]') AS args
FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
LEFT JOIN LATERAL unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargnames,
                         coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[p.pronargs::integer])))
          WITH ORDINALITY AS a(type, name, mode, ord) ON true
WHERE p.proname IN ('rec_recommend', 'rec_similar')
   OR (n.nspname = 'recvector' AND p.proname IN ('explain', 'log_interaction', 'hide', 'unhide', 'evaluate', 'tune'))
GROUP BY p.oid, n.nspname, p.proname
ORDER BY n.nspname = 'public' DESC, n.nspname, p.oid`;

export interface CatalogRow {
  schema: string;
  name: string;
  args: [string, string][];
}

/** The error for a database without the extension. */
export function notInstalled(cause?: unknown): NotConfiguredError {
  return new NotConfiguredError('RecVector is not installed in this database', {
    hint: 'Run: CREATE EXTENSION recvector CASCADE;',
    sqlstate: '42883',
    cause,
  });
}

/**
 * The installed signatures. rec_* live in the schema of rec_recommend (public first when there are
 * several), the rest in recvector; of several overloads the one whose first argument is text.
 */
export function parseCatalog(rows: readonly CatalogRow[]): Catalog {
  const recommend = rows.find((r) => r.name === 'rec_recommend');
  if (recommend === undefined) throw notInstalled();
  return {
    signature(name) {
      const schema = name.startsWith('rec_') ? recommend.schema : 'recvector';
      const overloads = rows.filter((r) => r.schema === schema && r.name === name);
      const chosen = overloads.find((r) => r.args[0]?.[1] === 'text') ?? overloads[0];
      if (chosen === undefined) {
        throw new NotConfiguredError(`RecVector's function ${schema}.${name} is missing`, {
          hint: 'Update the extension: ALTER EXTENSION recvector UPDATE;',
          sqlstate: '42883',
        });
      }
      return { schema, name, args: new Map(chosen.args) };
    },
  };
}

/** A caller's extra options, camelCase or snake_case keys, as SQL argument names. */
export function optionArgs(options: Record<string, unknown> | undefined): [string, unknown][] {
  if (options === undefined) return [];
  return Object.entries(options).map(([key, value]) => {
    const name = toSnake(key);
    if (!ARG_NAME.test(name)) {
      throw new InvalidArgumentError(`option ${JSON.stringify(key)} is not a valid argument name`, {
        hint: 'Option names are identifiers such as candidatePool or candidate_pool.',
      });
    }
    return [name, value];
  });
}

/**
 * `SELECT * FROM "schema"."fn"("a" => $1::type, ...)` for the arguments that are set (undefined
 * ones are left to the function's defaults). Names must be arguments of the installed function;
 * every value is a bind parameter cast to the argument's catalog type.
 */
export function namedCall(sig: Signature, args: readonly [string, unknown][], select = '*'): { text: string; values: unknown[] } {
  const seen = new Set<string>();
  const parts: string[] = [];
  const values: unknown[] = [];
  for (const [name, value] of args) {
    if (value === undefined) continue;
    if (seen.has(name)) throw new InvalidArgumentError(`argument ${name} is given twice`);
    seen.add(name);
    const type = sig.args.get(name);
    if (type === undefined) {
      throw new InvalidArgumentError(`${sig.schema}.${sig.name} has no argument ${JSON.stringify(name)}`, {
        hint: `Its arguments are: ${[...sig.args.keys()].join(', ')}. Newer options need a newer RecVector.`,
      });
    }
    values.push(bindValue(value, name));
    parts.push(`${quoteIdent(name)} => $${values.length}::${type}`);
  }
  const fn = `${quoteIdent(sig.schema)}.${quoteIdent(sig.name)}`;
  return { text: `SELECT ${select} FROM ${fn}(${parts.join(', ')})`, values };
}

/** Type parsers for the client's own queries: bigint (int8) counts as numbers (bigint when beyond 2^53). */
type TypeFormat = 'text' | 'binary';

export function typeParsers(base: { getTypeParser: (oid: number, format?: TypeFormat) => unknown }) {
  const INT8 = 20;
  const parseInt8 = (v: string): number | bigint => {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : BigInt(v);
  };
  return {
    getTypeParser: (oid: number, format?: TypeFormat): unknown =>
      oid === INT8 && format !== 'binary' ? parseInt8 : base.getTypeParser(oid, format),
  };
}

/** The same for `Id[]` arguments such as `exclude`. */
export function idList(values: readonly unknown[] | undefined, what: string): string[] | undefined {
  if (values === undefined) return undefined;
  if (!Array.isArray(values)) throw new InvalidArgumentError(`${what} must be an array of ids`);
  return values.map((v, i) => idText(v, `${what}[${i}]`));
}
