// getRange argument checks shared by the object-store backends.
import type { Backend } from './backend.ts';
import { BackendError } from './backend.ts';

/**
 * Throws INVALID for a negative or non-integer range. For an empty range returns an empty buffer
 * (after checking the object exists, as the contract asks); otherwise returns null and the
 * caller reads the range.
 */
export async function emptyOrInvalidRange(b: Backend, key: string, offset: number, length: number): Promise<Buffer | null> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new BackendError('INVALID', `${b.location}: bad range ${offset}+${length} for ${key}`);
  }
  if (length > 0) return null;
  if (!(await b.stat(key))) throw BackendError.notFound(b.location, key);
  return Buffer.alloc(0);
}
