export {
  AbortError,
  FerryError,
  type FerryErrorCode,
  type FerryErrorDetails,
  isFerryError,
  throwIfAborted,
} from './errors.js';
