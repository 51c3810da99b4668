// Where a repository's bytes live. A backend stores opaque, immutable objects by key; the
// repository layer (chunks, packs, indexes, manifests, crypto) knows nothing of where they go.
//
// Contract every backend keeps (the repository's crash safety rests on it):
// - `put` is atomic: a reader sees the whole object or no object, never a prefix.
// - objects are never modified in place; keys are slash-separated ("data/ab/abcd…").
// - errors carry a `code`: 'NOT_FOUND' for a missing key, 'UNAVAILABLE' after retries ran out.

export type ObjectInfo = { key: string; size: number };

export interface Backend {
  /** Where the objects live, for messages (never carries a secret). */
  readonly location: string;
  get(key: string): Promise<Buffer>;
  /** `length` bytes from `offset`; fails with NOT_FOUND if the object is missing. `into`, when
   *  given, is a reusable buffer of at least `length` bytes the backend may read into (and return
   *  a view of) instead of allocating. */
  getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  put(key: string, data: Uint8Array): Promise<void>;
  /** Optional: an object written piece by piece at given offsets, as atomic as `put` (invisible
   *  until `commit`), so a large object needs no buffer of its own size. */
  openWriter?(key: string): Promise<ObjectWriter>;
  /** Optional: the path of the file holding the object when it lies on this machine's file system,
   *  so a worker thread may read it directly (a missing object: the file does not exist). */
  localFile?(key: string): string;
  /** Size of the object, or null when it does not exist. */
  stat(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix`, in no promised order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

export interface ObjectWriter {
  /** Writes `data` at `offset`; writes may overlap in time but not in range. */
  write(data: Uint8Array, offset: number): Promise<void>;
  /** Makes the object visible, complete (after every write has resolved). */
  commit(): Promise<void>;
  /** Drops what was written; the object never appears. */
  abort(): Promise<void>;
}

export class BackendError extends Error {
  constructor(
    readonly code: 'NOT_FOUND' | 'UNAVAILABLE' | 'DENIED' | 'INVALID',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BackendError';
  }

  static notFound(location: string, key: string) {
    return new BackendError('NOT_FOUND', `${location}: object ${key} does not exist`);
  }
}
