// verify: every object a backup needs is present and intact. Structure (always): index objects
// decrypt, every pack they name exists with its recorded size, every backup record and manifest
// decrypts, every chunk a manifest names is in the index. With readData: every pack is read in
// full, its own trailer must agree with the index, and every blob is decrypted, decompressed and
// re-hashed to its keyed id. Damage is reported (naming the object), never thrown.
import { RepositoryError } from './errors.ts';
import { layout } from './format.ts';
import { PACK_END, PACK_MAGIC, decodeEntries, trailerAad } from './pack.ts';
import { open } from './keys.ts';
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
  const stored = new Map<string, number>();
  for await (const o of repo.backend.list(layout.data)) stored.set(o.key.split('/').pop()!, o.size);
  const listedBy = new Map<string, string>();
  for (const [name, packs] of index.objects) for (const p of packs) listedBy.set(p.packId, name);
  for (const [packId, size] of index.packs) {
    const key = layout.pack(packId);
    const actual = stored.get(packId);
    if (actual === undefined) problem(errors, key, `${key} is missing (listed by ${listedBy.get(packId)})`);
    else if (actual < size) problem(errors, key, `${key} is truncated (${actual} bytes, expected ${size})`);
    else if (actual !== size) problem(errors, key, `${key} has ${actual} bytes, expected ${size}`);
  }
  for (const packId of stored.keys()) {
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
    const byPack = new Map<string, { offset: number; length: number; flags: number; rawLength: number; id: Buffer }[]>();
    for (const [, packs] of index.objects) for (const p of packs) if (!byPack.has(p.packId)) byPack.set(p.packId, p.entries);
    const total = [...byPack.keys()].reduce((s, p) => s + (index.packs.get(p) ?? 0), 0);
    await forEachLimit([...byPack.keys()], 3, async (packId) => {
      const key = layout.pack(packId);
      const size = index.packs.get(packId)!;
      if (stored.get(packId) !== size) return; // already reported
      let buf: Buffer;
      try {
        buf = await repo.backend.get(key);
      } catch (e) {
        return fromError(e, key);
      }
      checkedBytes += buf.length;
      opts.onProgress?.({ bytesDone: checkedBytes, bytesTotal: total });
      const entries = byPack.get(packId)!;
      try {
        if (!buf.subarray(0, 8).equals(PACK_MAGIC) || !buf.subarray(buf.length - 8).equals(PACK_END)) throw new Error('pack markers damaged');
        const tlen = buf.readUInt32LE(buf.length - 12);
        const trailer = decodeEntries(open(repo.keys.dataKey, buf.subarray(buf.length - 12 - tlen, buf.length - 12), trailerAad(packId))).entries;
        const own = new Map(trailer.map((t) => [t.id.toString('hex'), t]));
        for (const e of entries) {
          const t = own.get(e.id.toString('hex'));
          if (!t || t.offset !== e.offset || t.length !== e.length) throw new Error(`trailer disagrees with the index on chunk ${e.id.toString('hex')}`);
        }
      } catch (e) {
        return problem(errors, key, `${key} is damaged (${(e as Error).message})`);
      }
      try {
        await repo.pool.open(buf, entries);
      } catch (e) {
        const at = e instanceof ChunkError && e.blobIndex !== undefined ? entries[e.blobIndex] : null;
        problem(errors, key, `${key} is damaged: ${at ? `chunk ${at.id.toString('hex')} at offset ${at.offset}: ` : ''}${(e as Error).message}`);
      }
    });
  }

  return { ok: errors.length === 0, errors, warnings, backups: recordKeys.length, packs: index.packs.size, chunks, checkedBytes };
}
