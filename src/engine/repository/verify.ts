// verify: every object a backup needs is present and intact. Structure (always): index objects
// decrypt, every pack they name exists with its recorded size, every backup record and manifest
// decrypts, every chunk a manifest names is in the index. With readData: every pack is read in
// full, its own trailer must agree with the index, and every blob is decrypted, decompressed and
// re-hashed to its keyed id. Damage is reported (naming the object), never thrown.
import { RepositoryError } from './errors.ts';
import { layout } from './format.ts';
import { PACK_MAGIC, readPackTrailer } from './pack.ts';
import { BufferPool } from './buffer-pool.ts';
import { MAX_RAW, MAX_READ } from './restore.ts';
import type { Repository } from './repository.ts';
import { forEachLimit } from './repository.ts';
import { ChunkError } from './workers.ts';

export type VerifyOptions = {
  readData?: boolean;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
};

export type VerifyProblem = { object: string; message: string };

export type VerifyReport = {
  ok: boolean;
  errors: VerifyProblem[];
  /** Harmless findings, e.g. packs no index names (leftovers of an interrupted backup). */
  warnings: VerifyProblem[];
  backups: number;
  packs: number;
  chunks: number;
  /** Bytes read and checked with readData. */
  checkedBytes: number;
};

export async function runVerify(repo: Repository, opts: VerifyOptions): Promise<VerifyReport> {
  const errors: VerifyProblem[] = [];
  const warnings: VerifyProblem[] = [];
  const problem = (list: VerifyProblem[], object: string, message: string): void => {
    list.push({ object, message });
  };
  const fromError = (e: unknown, fallbackObject: string): void => {
    if (e instanceof RepositoryError) problem(errors, e.object ?? fallbackObject, e.message);
    else problem(errors, fallbackObject, (e as Error).message);
  };

  await repo.loadIndex();
  for (const e of repo.damagedIndexes) fromError(e, 'index/');
  const index = repo.index;

  // Packs: present, with the size the index recorded.
  const storedSizes = new Map<string, number>();
  for await (const o of repo.backend.list(layout.data)) storedSizes.set(o.key.split('/').pop()!, o.size);
  const listedBy = new Map<string, string>();
  for (const [name, packs] of index.objects) for (const p of packs) listedBy.set(p.packId, name);
  for (const [packId, size] of index.packs) {
    const key = layout.pack(packId);
    const actual = storedSizes.get(packId);
    if (actual === undefined) problem(errors, key, `${key} is missing (listed by ${listedBy.get(packId)})`);
    else if (actual < size) problem(errors, key, `${key} is truncated (${actual} bytes, expected ${size})`);
    else if (actual !== size) problem(errors, key, `${key} has ${actual} bytes, expected ${size}`);
  }
  for (const packId of storedSizes.keys()) {
    if (!index.packs.has(packId)) problem(warnings, layout.pack(packId), 'no index lists this pack (leftover of an interrupted backup or prune; the next prune removes it)');
  }

  // Backups: records and manifests decrypt; every chunk is indexed.
  const recordKeys: string[] = [];
  for await (const o of repo.backend.list(layout.backups)) recordKeys.push(o.key);
  let chunks = 0;
  await forEachLimit(recordKeys, 4, async (key) => {
    let record;
    try {
      record = await repo.readRecordObject(key);
    } catch (e) {
      return fromError(e, key);
    }
    for (const [n, d] of record.disks.entries()) {
      let m;
      try {
        m = await repo.readManifest(d.manifest);
      } catch (e) {
        return fromError(e, d.manifest);
      }
      if (m.size !== d.size) problem(errors, d.manifest, `${d.manifest}: size ${m.size} differs from the record's ${d.size}`);
      let missing = 0;
      let firstMissing = '';
      for (let i = 0; i < m.count; i++) {
        const id = m.id(i);
        if (!id) continue;
        chunks++;
        if (!index.has(id)) {
          if (!missing++) firstMissing = `${id.toString('hex')} at offset ${i * m.chunkSize}`;
        }
      }
      if (missing) problem(errors, key, `${key} disk ${n} (${d.name}): ${missing} chunk(s) are in no index, first ${firstMissing}`);
    }
  });

  // Data: read every pack, check its trailer against the index and every blob against its id.
  let checkedBytes = 0;
  if (opts.readData) {
    const packIds = [...index.packs.keys()];
    const total = packIds.reduce((s, p) => s + (index.packs.get(p) ?? 0), 0);
    // Each pack in ranged reads of at most MAX_READ (restore's grouping), through reused buffers:
    // memory stays a few MiB per pack in flight whatever the pack size.
    const stored = new BufferPool(MAX_READ, 4);
    const plain = new BufferPool(MAX_RAW, 4);
    await forEachLimit(packIds, 3, async (packId) => {
      const key = layout.pack(packId);
      const size = index.packs.get(packId)!;
      if (storedSizes.get(packId) !== size) return; // already reported
      const entries = index.entries(packId)!;
      try {
        const head = await repo.backend.getRange(key, 0, PACK_MAGIC.length);
        if (!head.equals(PACK_MAGIC)) throw new Error('pack markers damaged');
        const trailer = await readPackTrailer(repo.backend, packId, size, repo.keys.dataKey);
        const own = new Map(trailer.map((t) => [t.id.toString('hex'), t]));
        for (const e of entries) {
          const t = own.get(e.id.toString('hex'));
          if (!t || t.offset !== e.offset || t.length !== e.length) throw new Error(`trailer disagrees with the index on chunk ${e.id.toString('hex')}`);
        }
      } catch (e) {
        if ((e as { code?: string }).code === 'NOT_FOUND' || (e as { code?: string }).code === 'UNAVAILABLE') return fromError(e, key);
        return problem(errors, key, `${key} is damaged (${(e as Error).message})`);
      }
      const sorted = [...entries].sort((a, b) => a.offset - b.offset);
      for (let i = 0; i < sorted.length; ) {
        let j = i + 1;
        let raw = sorted[i].rawLength;
        while (
          j < sorted.length &&
          sorted[j].offset === sorted[j - 1].offset + sorted[j - 1].length &&
          sorted[j].offset + sorted[j].length - sorted[i].offset <= MAX_READ &&
          raw + sorted[j].rawLength <= MAX_RAW
        ) raw += sorted[j++].rawLength;
        const group = sorted.slice(i, j);
        i = j;
        const from = group[0].offset;
        const length = group[group.length - 1].offset + group[group.length - 1].length - from;
        let buf: Buffer;
        try {
          buf = await repo.backend.getRange(key, from, length, length <= MAX_READ ? stored.take(length) : undefined);
        } catch (e) {
          return fromError(e, key);
        }
        if (buf.length !== length) return problem(errors, key, `${key} is truncated`);
        try {
          const r = await repo.pool.open(
            buf,
            group.map((e) => ({ ...e, offset: e.offset - from })),
            raw <= MAX_RAW ? plain.take(raw) : Buffer.allocUnsafeSlow(raw),
          );
          stored.give(r.buf);
          plain.give(r.out);
        } catch (e) {
          const at = e instanceof ChunkError && e.blobIndex !== undefined ? group[e.blobIndex] : null;
          return problem(errors, key, `${key} is damaged: ${at ? `chunk ${at.id.toString('hex')} at offset ${at.offset}: ` : ''}${(e as Error).message}`);
        }
      }
      checkedBytes += size;
      opts.onProgress?.({ bytesDone: checkedBytes, bytesTotal: total });
    });
  }

  return { ok: errors.length === 0, errors, warnings, backups: recordKeys.length, packs: index.packs.size, chunks, checkedBytes };
}
