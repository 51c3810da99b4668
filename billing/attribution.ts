// Dedup-aware attribution: who pays for the bytes a deduplicating repository stores.
// A chunk referenced by the backups of k distinct instances counts size/k to each of them
// (k = 1: the instance's unique bytes). Shares are exact rationals; they are rounded to whole
// bytes by the largest-remainder method (floor every share, then hand the bytes left over, one
// each, to the largest remainders; ties by id), so the rounded shares sum exactly to the stored
// total and each is within one byte of its exact value. Projects are rounded the same way from
// their exact shares (the sum of their instances' exact shares). Method: docs/billing.md.
//
// Input: the chunk references the repository engine exposes per backup, flattened to
// (instance, project, chunk, stored size). The same chunk may be listed many times (many
// backups, many disks): an instance counts once per chunk.

export type ChunkReference = { instanceId: string; projectId: string; chunkId: string; storedSize: bigint | number };

export type Share = {
  id: string;
  /** Bytes of chunks only this instance (project) references. */
  uniqueBytes: bigint;
  /** Its rounded share of chunks it shares with others. */
  sharedBytes: bigint;
  /** uniqueBytes + sharedBytes: the rounded exact share. */
  totalBytes: bigint;
  /** The exact share as a reduced fraction. */
  exact: { numerator: bigint; denominator: bigint };
};

export type Attribution = {
  storedTotal: bigint;
  chunks: number;
  instances: (Share & { projectId: string })[];
  projects: Share[];
};

export class AttributionError extends Error {
  static sizeMismatch(chunkId: string) {
    return new AttributionError(`chunk ${chunkId} is listed with two different stored sizes`);
  }
  static twoProjects(instanceId: string) {
    return new AttributionError(`instance ${instanceId} is listed under two projects`);
  }
  static negative(chunkId: string) {
    return new AttributionError(`chunk ${chunkId} has a negative stored size`);
  }
}

type Fraction = { n: bigint; d: bigint };
const gcd = (a: bigint, b: bigint): bigint => {
  while (b !== 0n) [a, b] = [b, a % b];
  return a < 0n ? -a : a;
};
const reduce = ({ n, d }: Fraction): Fraction => {
  const g = gcd(n, d);
  return g > 1n ? { n: n / g, d: d / g } : { n, d };
};
const add = (x: Fraction, y: Fraction): Fraction => reduce({ n: x.n * y.d + y.n * x.d, d: x.d * y.d });

/** Largest-remainder rounding of exact shares that sum to the integer `total`. */
export function roundShares(shares: { id: string; exact: Fraction }[], total: bigint): Map<string, bigint> {
  const floors = shares.map((s) => ({ id: s.id, floor: s.exact.n / s.exact.d, rem: { n: s.exact.n % s.exact.d, d: s.exact.d } }));
  let left = total - floors.reduce((a, f) => a + f.floor, 0n);
  const order = [...floors].sort((a, b) => {
    const lhs = a.rem.n * b.rem.d;
    const rhs = b.rem.n * a.rem.d;
    return lhs > rhs ? -1 : lhs < rhs ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  const out = new Map(floors.map((f) => [f.id, f.floor]));
  for (const f of order) {
    if (left <= 0n) break;
    out.set(f.id, out.get(f.id)! + 1n);
    left -= 1n;
  }
  return out;
}

/**
 * Collects chunk references one at a time (so a caller reading manifests need not hold them all:
 * memory is one entry per distinct chunk plus the instances referencing it), then attributes.
 */
export class AttributionBuilder {
  // Instances interned as small integers; a chunk keeps the (few) instances referencing it in an array.
  private readonly index = new Map<string, number>();
  private readonly ids: string[] = [];
  private readonly projectOfIndex: string[] = [];
  private readonly chunks = new Map<string, { size: bigint; instances: number[] }>();

  add(r: ChunkReference): void {
    const { index, ids, projectOfIndex, chunks } = this;
    let i = index.get(r.instanceId);
    if (i === undefined) {
      i = ids.length;
      index.set(r.instanceId, i);
      ids.push(r.instanceId);
      projectOfIndex.push(r.projectId);
    } else if (projectOfIndex[i] !== r.projectId) throw AttributionError.twoProjects(r.instanceId);
    const c = chunks.get(r.chunkId);
    if (!c) {
      const size = BigInt(r.storedSize);
      if (size < 0n) throw AttributionError.negative(r.chunkId);
      chunks.set(r.chunkId, { size, instances: [i] });
    } else {
      if (c.size !== BigInt(r.storedSize)) throw AttributionError.sizeMismatch(r.chunkId);
      if (!c.instances.includes(i)) c.instances.push(i);
    }
  }

  result(): Attribution {
    return split(this.ids, this.projectOfIndex, this.chunks);
  }
}

export function attribute(refs: Iterable<ChunkReference>): Attribution {
  const b = new AttributionBuilder();
  for (const r of refs) b.add(r);
  return b.result();
}

function split(ids: string[], projectOfIndex: string[], chunks: Map<string, { size: bigint; instances: number[] }>): Attribution {
  const projectOf = new Map(ids.map((id, i) => [id, projectOfIndex[i]!]));

  // Per instance: unique bytes and, per sharing degree k, the bytes shared k ways.
  const unique = new Map<string, bigint>();
  const byDegree = new Map<string, Map<bigint, bigint>>();
  const projectUnique = new Map<string, bigint>();
  let storedTotal = 0n;
  for (const { size, instances } of chunks.values()) {
    storedTotal += size;
    const k = BigInt(instances.length);
    for (const i of instances) {
      const id = ids[i]!;
      if (k === 1n) unique.set(id, (unique.get(id) ?? 0n) + size);
      else {
        const m = byDegree.get(id) ?? new Map<bigint, bigint>();
        m.set(k, (m.get(k) ?? 0n) + size);
        byDegree.set(id, m);
      }
    }
    const p = projectOfIndex[instances[0]!]!;
    if (instances.every((i) => projectOfIndex[i] === p)) projectUnique.set(p, (projectUnique.get(p) ?? 0n) + size);
  }

  const exactOf = new Map<string, Fraction>();
  for (const id of projectOf.keys()) {
    let f: Fraction = { n: unique.get(id) ?? 0n, d: 1n };
    for (const [k, bytes] of byDegree.get(id) ?? []) f = add(f, { n: bytes, d: k });
    exactOf.set(id, f);
  }
  const projectExact = new Map<string, Fraction>();
  for (const [id, p] of projectOf) projectExact.set(p, add(projectExact.get(p) ?? { n: 0n, d: 1n }, exactOf.get(id)!));

  const instanceIds = [...projectOf.keys()].sort();
  const roundedInstances = roundShares(instanceIds.map((id) => ({ id, exact: exactOf.get(id)! })), storedTotal);
  const projectIds = [...projectExact.keys()].sort();
  const roundedProjects = roundShares(projectIds.map((id) => ({ id, exact: projectExact.get(id)! })), storedTotal);

  const share = (id: string, uniqueBytes: bigint, total: bigint, f: Fraction): Share => ({
    id, uniqueBytes, sharedBytes: total - uniqueBytes, totalBytes: total, exact: { numerator: f.n, denominator: f.d },
  });
  return {
    storedTotal,
    chunks: chunks.size,
    instances: instanceIds.map((id) => ({ ...share(id, unique.get(id) ?? 0n, roundedInstances.get(id)!, exactOf.get(id)!), projectId: projectOf.get(id)! })),
    projects: projectIds.map((id) => share(id, projectUnique.get(id) ?? 0n, roundedProjects.get(id)!, projectExact.get(id)!)),
  };
}
