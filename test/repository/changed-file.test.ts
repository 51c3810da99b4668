// `strongbox repo backup --parent ID --changed FILE`: only the chunks the listed extents touch are
// read; the rest comes from the parent's manifest; the new backup restores byte-identical.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseChangedExtents } from '../../src/engine/repository/changed-extents.ts';
import { runCli } from './cli-helpers.ts';
import { MiB, listObjects, makeImage, sha256File, tempDir } from './helpers.ts';

describe('repo backup --changed FILE', () => {
  let dir: string;
  let day1: string;
  let day2: string;
  let parent: string;
  const size = 12 * MiB + 333;
  const dest = () => `file://${path.join(dir, 'repo')}`;

  beforeAll(async () => {
    dir = await tempDir();
    day1 = path.join(dir, 'day1.raw');
    day2 = path.join(dir, 'day2.raw');
    await makeImage(day1, size, [
      { offset: 0, length: 6 * MiB, kind: 'random' },
      { offset: 8 * MiB, length: 4 * MiB + 333, kind: 'text' },
    ]);
    expect((await runCli(['init', '--destination', dest(), '--chunk-size', String(MiB)])).code).toBe(0);
    const r = await runCli(['backup', '--destination', dest(), '--disk', day1, '--tag', 'vm']);
    expect(r.code, r.stderr).toBe(0);
    parent = JSON.parse(r.stdout).id;
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('reads only the chunks the listed extents touch, and the backup restores byte-identical', async () => {
    await fs.copyFile(day1, day2);
    const changes = [
      { offset: 2 * MiB + 10, length: 100 }, // chunk 2
      { offset: 5 * MiB - 1, length: 2 }, // chunks 4 and 5
      { offset: 7 * MiB, length: 4096 }, // chunk 7, a hole in day1
      { offset: size - 33, length: 33 }, // the short last chunk (12)
    ];
    const fh = await fs.open(day2, 'r+');
    for (const c of changes) {
      // Every byte flipped: random bytes over random data could leave a chunk as it was (1 in 256
      // per byte), and then it is rightly deduplicated.
      const b = Buffer.alloc(c.length);
      await fh.read(b, 0, c.length, c.offset);
      await fh.write(b.map((x) => x ^ 0xff), 0, c.length, c.offset);
    }
    await fh.close();
    const file = path.join(dir, 'changed.json');
    await fs.writeFile(file, JSON.stringify(changes));

    const r = await runCli(['backup', '--destination', dest(), '--disk', day2, '--tag', 'vm', '--parent', parent, '--changed', file]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.readBytes).toBe(4 * MiB + 333); // chunks 2, 4, 5, 7 and the 333-byte chunk 12
    expect(out.parentBytes).toBe(7 * MiB); // day1 chunks 0, 1, 3 and 8–11, taken from the parent unread
    expect(out.newChunks).toBe(5);

    const restored = path.join(dir, 'day2.restored');
    const x = await runCli(['restore', '--destination', dest(), '--backup', out.id, '--disk', '0', '--to', restored]);
    expect(x.code, x.stderr).toBe(0);
    expect(await sha256File(restored)).toBe(await sha256File(day2));
    expect((await runCli(['verify', '--destination', dest(), '--read-data'])).code).toBe(0);
  });

  it('refuses a bad FILE or a missing parent with a clear message, and writes nothing', async () => {
    const before = await listObjects(dir);
    const cases: [string[], RegExp][] = [
      [['--changed', path.join(dir, 'missing.json'), '--parent', parent], /--changed .*missing\.json cannot be read/],
      [['--changed', path.join(dir, 'changed.json')], /--changed FILE needs --parent BACKUP/],
    ];
    const notJson = path.join(dir, 'not.json');
    await fs.writeFile(notJson, 'offset=0');
    cases.push([['--changed', notJson, '--parent', parent], /not\.json: changed extents are not JSON/]);
    const past = path.join(dir, 'past.json');
    await fs.writeFile(past, JSON.stringify([{ offset: size - 10, length: 11 }]));
    cases.push([['--changed', past, '--parent', parent], /past\.json: entry 0 reaches past the end of the disk/]);
    for (const [extra, message] of cases) {
      const r = await runCli(['backup', '--destination', dest(), '--disk', day2, ...extra]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    expect(await listObjects(dir)).toEqual(before);
  });
});

describe('changed extents file formats', () => {
  it('reads a list of {offset, length}', () => {
    expect(parseChangedExtents('[{"offset":0,"length":10},{"offset":4096,"length":0}]', 'f.json', 8192)).toEqual([{ offset: 0, length: 10 }]);
  });

  it('reads `qemu-img map --output=json` of an overlay: its own (depth 0) clusters are the changes', () => {
    // As printed by qemu-img 8 for a qcow2 overlay on a raw base ("offset" is the host offset).
    const map = `[{ "start": 0, "length": 65536, "depth": 1, "present": true, "zero": false, "data": true, "compressed": false, "offset": 0},
{ "start": 65536, "length": 131072, "depth": 0, "present": true, "zero": false, "data": true, "compressed": false, "offset": 327680},
{ "start": 196608, "length": 65536, "depth": 0, "present": true, "zero": true, "data": false, "compressed": false},
{ "start": 262144, "length": 786432, "depth": 1, "present": false, "zero": true, "data": false, "compressed": false}]`;
    expect(parseChangedExtents(map, 'map.json', 1 << 20)).toEqual([
      { offset: 65536, length: 131072 },
      { offset: 196608, length: 65536 },
    ]);
  });

  it('names the file and the entry that is wrong', () => {
    expect(() => parseChangedExtents('{"offset":0}', 'f.json', 10)).toThrow(/f\.json: changed extents must be a JSON array/);
    expect(() => parseChangedExtents('[{"offset":-1,"length":1}]', 'f.json', 10)).toThrow(/f\.json: entry 0 needs whole numbers ≥ 0 for "offset" and "length"/);
    expect(() => parseChangedExtents('[{"start":0,"length":1}]', 'm.json', 10)).toThrow(/m\.json: entry 0 needs a whole "depth"/);
  });
});
