export { RecEngine, createRecEngine } from './engine.js';
export {
  ConnectionError,
  InvalidArgumentError,
  NotConfiguredError,
  NotFoundError,
  PermissionError,
  RecVectorError,
} from './errors.js';
export { toCamel, toSnake } from './sql.js';
export type * from './types.js';
