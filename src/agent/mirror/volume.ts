/** The cache dir's filesystem, as statfs(2) reports it (the volume's size and free space for the metrics). */
import { statfs } from 'node:fs/promises';
import type { VolumeStats } from '../metrics.js';

export async function statVolume(dir: string): Promise<VolumeStats> {
  const stats = await statfs(dir);
  // bavail, not bfree: the blocks reserved for root are not available to the agent (uid 65532).
  return { sizeBytes: stats.blocks * stats.bsize, availableBytes: stats.bavail * stats.bsize };
}
