/**
 * Typed errors. Every failure of a RecEngine call is a RecVectorError (or a subclass) carrying the
 * server's message, detail, hint and SQLSTATE, and whether retrying the same call can succeed.
 */

export interface RecVectorErrorFields {
  detail?: string | undefined;
  hint?: string | undefined;
  sqlstate?: string | undefined;
  retryable?: boolean | undefined;
  cause?: unknown;
}

/** Base class of every error thrown by the client. */
export class RecVectorError extends Error {
  /** PostgreSQL's DETAIL line, when the server sent one. */
  readonly detail: string | undefined;
  /** PostgreSQL's HINT line: RecVector's hints say what to do next. */
  readonly hint: string | undefined;
  /** The five-character SQLSTATE; undefined for errors found before reaching the server. */
  readonly sqlstate: string | undefined;
  /** True when the same call may succeed if tried again (connection loss, serialization failure, deadlock, lock timeout, cancel). */
  readonly retryable: boolean;

  constructor(message: string, fields: RecVectorErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = new.target.name;
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.sqlstate = fields.sqlstate;
    this.retryable = fields.retryable ?? (fields.sqlstate !== undefined && RETRYABLE.has(fields.sqlstate));
  }
}

/** An argument was rejected (SQLSTATE class 22: k out of range, lambda not in [0, 1], an unknown similar() mode, an interaction log_interaction refuses, a bad id, an unknown option). */
export class InvalidArgumentError extends RecVectorError {}

/** Something named does not exist: an unknown filter (42704), an entity without a vector (P0002). */
export class NotFoundError extends RecVectorError {}

/** RecVector is not ready (55000): no mapping loaded, or too little history for evaluate()/tune(); or the extension is not installed in this database. */
export class NotConfiguredError extends RecVectorError {}

/** The role lacks a privilege (42501): application roles need `GRANT recvector_app TO role`, status() needs recvector_worker, evaluate() and tune() the extension's owner. */
export class PermissionError extends RecVectorError {}

/** The database could not be reached or the connection was lost. Retryable, except for authentication and unknown-database errors. */
export class ConnectionError extends RecVectorError {}

const RETRYABLE = new Set(['40001', '40P01', '55P03', '57014']);
const CONNECTION_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
const NOT_FOUND_STATES = new Set(['42704', 'P0002']);
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH',
  'ENETUNREACH', 'ECONNABORTED', 'ENOENT',
]);
const NETWORK_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly|The server does not support SSL/i;

interface PgLikeError {
  message?: unknown;
  code?: unknown;
  severity?: unknown;
  detail?: unknown;
  hint?: unknown;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Replaces every secret (connection string, password) found in `text` by `***`. */
export function redact(text: string | undefined, secrets: readonly string[]): string | undefined {
  if (text === undefined) return undefined;
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('***');
  return out;
}

/**
 * Turns anything thrown by `pg` into a RecVectorError. Server errors keep their SQLSTATE fields and
 * are chained as `cause`; client-side errors are not chained (some carry the connection string,
 * e.g. an invalid URL's `input`). Every text is passed through `redact`.
 */
export function toRecVectorError(err: unknown, secrets: readonly string[] = []): RecVectorError {
  if (err instanceof RecVectorError) return err;
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as PgLikeError;
  const message = redact(str(e.message), secrets) ?? 'unknown error';
  const code = str(e.code);
  const isServerError = code !== undefined && /^[0-9A-Z]{5}$/.test(code) && str(e.severity) !== undefined;

  if (isServerError) {
    const detail = redact(str(e.detail), secrets);
    const hint = redact(str(e.hint), secrets);
    const clean = message === str(e.message) && detail === str(e.detail) && hint === str(e.hint);
    // The original error is chained only if it shows no secret.
    const fields = { detail, hint, sqlstate: code, cause: clean ? err : undefined };
    const cls = code.slice(0, 2);
    if (cls === '08' || CONNECTION_STATES.has(code)) return new ConnectionError(message, { ...fields, retryable: true });
    if (cls === '28' || code === '3D000') return new ConnectionError(message, { ...fields, retryable: false });
    if (code === '42501') return new PermissionError(message, fields);
    if (code === '55000') return new NotConfiguredError(message, fields);
    if (cls === '22') return new InvalidArgumentError(message, fields);
    if (NOT_FOUND_STATES.has(code)) return new NotFoundError(message, fields);
    return new RecVectorError(message, fields);
  }
  if ((code !== undefined && NETWORK_CODES.has(code)) || NETWORK_MESSAGES.test(message)) {
    return new ConnectionError(message, { retryable: true });
  }
  if (code === 'ERR_INVALID_URL') {
    return new ConnectionError('invalid connection string', {
      retryable: false,
      hint: 'Use postgres://user:password@host:port/database or key=value pairs.',
    });
  }
  return new RecVectorError(message, { retryable: false });
}
