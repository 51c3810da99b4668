// The changed extents of `strongbox repo backup --changed FILE`: what an operator knows changed
// since the parent backup (from CBT, `rbd diff`, a qcow2 overlay…). FILE is JSON, either
//   - a list of extents: [{ "offset": 0, "length": 65536 }, …] (bytes of the disk), or
//   - the output of `qemu-img map --output=json OVERLAY` for an overlay holding exactly the writes
//     since the parent: entries with "depth": 0 are the overlay's own clusters (changed, whether
//     data or zeros); deeper ones come from the backing chain (unchanged). Such entries are told
//     apart by their "start" field (their "offset" is a host-file offset, not a disk offset).
import { RepositoryError } from './errors.ts';
import type { Extent } from './disk-source.ts';

type QemuMapEntry = { start: number; length: number; depth: number; present?: boolean };

/** Parses FILE's text; INVALID_ARGUMENT naming `file` and the entry for anything else. */
export function parseChangedExtents(text: string, file: string, diskSize: number): Extent[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw RepositoryError.invalid(`${file}: changed extents are not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(value)) throw RepositoryError.invalid(`${file}: changed extents must be a JSON array of {"offset","length"} or "qemu-img map --output=json" output`);
  const out: Extent[] = [];
  value.forEach((entry: unknown, i) => {
    const e = entry as Partial<QemuMapEntry & Extent>;
    const bad = (why: string) => RepositoryError.invalid(`${file}: entry ${i} ${why}: ${JSON.stringify(entry)}`);
    if (typeof e !== 'object' || e === null) throw bad('is not an object');
    const isQemu = 'start' in e;
    const offset = isQemu ? e.start : e.offset;
    const { length } = e;
    if (!isWhole(offset) || !isWhole(length)) throw bad(`needs whole numbers ≥ 0 for "${isQemu ? 'start' : 'offset'}" and "length"`);
    if (offset + length > diskSize) throw bad(`reaches past the end of the disk (${diskSize} bytes)`);
    if (isQemu) {
      if (!isWhole(e.depth)) throw bad('needs a whole "depth"');
      if (e.depth !== 0 || e.present === false) return; // from the backing chain: unchanged
    }
    if (length > 0) out.push({ offset, length });
  });
  return out;
}

function isWhole(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}
