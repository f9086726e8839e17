/**
 * The pack index reader against indexes git itself wrote: it must list exactly what `git show-index` lists,
 * and refuse anything torn or foreign (maintenance deletes packs on the strength of these lists).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PackIndexError, parsePackIndex, readPackTrailer } from '../../../../src/agent/maintenance/pack-index.js';
import { git, tempDir } from '../../../support/git-fixtures.js';
import { testWithTools } from '../../../support/tools.js';

const gitTest = testWithTools(['git']);

function packedRepo(objectFormat: 'sha1' | 'sha256', files: number): { dir: string; idx: string; pack: string } {
  const dir = tempDir(`pack-index-${objectFormat}`);
  git(['init', '-q', `--object-format=${objectFormat}`, '-b', 'main', dir]);
  for (let i = 0; i < files; i++) execFileSync('sh', ['-c', `seq ${i} ${i + 50} > f${i}`], { cwd: dir });
  git(['add', '-A'], dir);
  git(['commit', '-q', '-m', 'files'], dir);
  git(['repack', '-a', '-d', '-q'], dir);
  const packDir = join(dir, '.git', 'objects', 'pack');
  const base = readdirSync(packDir).find((name) => name.endsWith('.idx'))?.replace(/\.idx$/, '') ?? '';
  return { dir, idx: join(packDir, `${base}.idx`), pack: join(packDir, `${base}.pack`) };
}

for (const format of ['sha1', 'sha256'] as const) {
  gitTest(`a ${format} index lists exactly what git show-index lists, and answers membership`, async (t) => {
    const { dir, idx, pack } = packedRepo(format, 300);
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const bytes = readFileSync(idx);
    const index = parsePackIndex(bytes, format);
    const shown = execFileSync('git', ['show-index', `--object-format=${format}`], { input: bytes, encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((line) => line.split(' ')[1] ?? '')
      .sort();
    const listed = Array.from({ length: index.objectCount }, (_, i) => index.id(i).toString('hex'));
    t.deepEqual(listed, shown);
    t.is(index.objectCount, 302, '300 blobs, a tree and a commit');
    for (const id of shown) t.true(index.has(Buffer.from(id, 'hex')));
    const absent = Buffer.from(shown[0] ?? '', 'hex');
    absent[absent.length - 1] = (absent[absent.length - 1] ?? 0) ^ 1;
    if (!shown.includes(absent.toString('hex'))) t.false(index.has(absent));
    t.false(index.has(Buffer.alloc(format === 'sha1' ? 20 : 32, 0xff)));
    t.true((await readPackTrailer(pack, format)).equals(index.packChecksum), 'the .idx records its .pack checksum');
  });
}

gitTest('a torn, altered or foreign index is refused, never half-read', (t) => {
  const { dir, idx } = packedRepo('sha1', 20);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bytes = readFileSync(idx);
  t.throws(() => parsePackIndex(bytes.subarray(0, bytes.length - 7), 'sha1'), { instanceOf: PackIndexError });
  const flipped = Buffer.from(bytes);
  flipped[1100] = (flipped[1100] ?? 0) ^ 0x40;
  t.throws(() => parsePackIndex(flipped, 'sha1'), { instanceOf: PackIndexError, message: /checksum/ });
  t.throws(() => parsePackIndex(bytes, 'sha256'), { instanceOf: PackIndexError });
  t.throws(() => parsePackIndex(Buffer.from('not an index at all'), 'sha1'), { instanceOf: PackIndexError });
  const version1 = Buffer.from(bytes);
  version1.writeUInt32BE(1, 4);
  t.throws(() => parsePackIndex(version1, 'sha1'), { instanceOf: PackIndexError, message: /version 2/ });
});
