/**
 * Reads the object ids a pack index (`objects/pack/pack-<hash>.idx`, version 2) lists, so maintenance can prove
 * that every object of a pack it is about to delete is listed by a pack that stays. Version 2 layout
 * (gitformat-pack(5)): magic `\377tOc`, version 2, 256 fan-out counts, the sorted object names, CRC32s,
 * offsets, then the pack's checksum and the index's own checksum.
 */
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';

export type ObjectFormat = 'sha1' | 'sha256';

export const HASH_LENGTH: Record<ObjectFormat, number> = { sha1: 20, sha256: 32 };

const MAGIC = 0xff744f63;
const HEADER_BYTES = 8;
const FANOUT_BYTES = 256 * 4;

export class PackIndexError extends Error {}

export interface PackIndex {
  readonly objectCount: number;
  /** The checksum of the .pack this index describes (the .pack's last bytes). */
  readonly packChecksum: Buffer;
  has(id: Buffer): boolean;
  /** The i-th object id in sorted order (a view into the index, not a copy). */
  id(i: number): Buffer;
}

/** Parses an index file's bytes; throws PackIndexError when they are not a complete, intact version 2 index. */
export function parsePackIndex(bytes: Buffer, format: ObjectFormat): PackIndex {
  const hashLength = HASH_LENGTH[format];
  if (bytes.length < HEADER_BYTES + FANOUT_BYTES + 2 * hashLength) throw new PackIndexError('index too short');
  if (bytes.readUInt32BE(0) !== MAGIC || bytes.readUInt32BE(4) !== 2) throw new PackIndexError('not a version 2 pack index');
  const fanout = (byte: number): number => (byte < 0 ? 0 : bytes.readUInt32BE(HEADER_BYTES + byte * 4));
  const count = fanout(255);
  // names, CRC32s, 4-byte offsets, then 8-byte offsets for the entries whose 4-byte offset has the top bit set
  const namesStart = HEADER_BYTES + FANOUT_BYTES;
  const offsetsStart = namesStart + count * (hashLength + 4);
  const largeStart = offsetsStart + count * 4;
  if (largeStart + 2 * hashLength > bytes.length) throw new PackIndexError('index truncated');
  const largeOffsets = (bytes.length - 2 * hashLength - largeStart) / 8;
  if (!Number.isInteger(largeOffsets)) throw new PackIndexError('index has a wrong length');
  const body = bytes.subarray(0, bytes.length - hashLength);
  const trailer = bytes.subarray(bytes.length - hashLength);
  if (!createHash(format).update(body).digest().equals(trailer)) throw new PackIndexError('index checksum mismatch');
  for (let byte = 1; byte < 256; byte++) if (fanout(byte) < fanout(byte - 1)) throw new PackIndexError('index fan-out is not sorted');

  const id = (i: number): Buffer => bytes.subarray(namesStart + i * hashLength, namesStart + (i + 1) * hashLength);
  return {
    objectCount: count,
    packChecksum: Buffer.from(bytes.subarray(bytes.length - 2 * hashLength, bytes.length - hashLength)),
    id,
    has(wanted: Buffer): boolean {
      const first = wanted[0] ?? 0;
      let low = fanout(first - 1);
      let high = fanout(first) - 1;
      while (low <= high) {
        const middle = (low + high) >>> 1;
        const order = id(middle).compare(wanted);
        if (order === 0) return true;
        if (order < 0) low = middle + 1;
        else high = middle - 1;
      }
      return false;
    },
  };
}

export async function readPackIndex(path: string, format: ObjectFormat): Promise<PackIndex> {
  return parsePackIndex(await readFile(path), format);
}

/** The checksum a .pack file ends with, which its index records: a mismatch means the pair does not belong together. */
export async function readPackTrailer(path: string, format: ObjectFormat): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const hashLength = HASH_LENGTH[format];
    if (size < 12 + hashLength) throw new PackIndexError('pack too short');
    const trailer = Buffer.alloc(hashLength);
    await handle.read(trailer, 0, hashLength, size - hashLength);
    return trailer;
  } finally {
    await handle.close();
  }
}
