/**
 * Bounds on what the function reads, so that no input (an alias bomb, a 10,000-deep nesting, a huge stream)
 * can make it run for minutes or die out of memory: each is checked in linear time, before the work it bounds.
 */
export interface ReadLimits {
  /** Largest input accepted on stdin, in bytes (flag `--max-input-bytes`). */
  readonly maxInputBytes: number;
  /**
   * Most YAML tokens (scalars, indicators, line breaks) in one input: what parsing holds in memory grows with
   * them (about 350 bytes each at worst), not with bytes. One per 4 bytes of the byte limit: the 10,000-item
   * benchmark (7.6 MB) has 2.1 million; the default allows 8.4 million, about 3 GB at worst, under Node's heap.
   */
  readonly maxTokens: number;
  /** Deepest nesting of mappings and sequences (kyaml refuses more than 10,000; no manifest comes close to this). */
  readonly maxDepth: number;
  /** Most aliases (`*name`) in one input. */
  readonly maxAliases: number;
  /** Most nodes that aliases may add when expanded, over the whole input (what a "billion laughs" inflates). */
  readonly maxAliasExpansion: number;
}

const DEFAULT_MAX_INPUT_BYTES = 32 * 1024 * 1024;

/** The limits for a given byte limit (the token limit follows it). */
export function limitsForInputBytes(maxInputBytes: number, base: ReadLimits = DEFAULT_READ_LIMITS): ReadLimits {
  return { ...base, maxInputBytes, maxTokens: Math.ceil(maxInputBytes / 4) };
}

export const DEFAULT_READ_LIMITS: ReadLimits = {
  maxInputBytes: DEFAULT_MAX_INPUT_BYTES,
  maxTokens: DEFAULT_MAX_INPUT_BYTES / 4,
  maxDepth: 1000,
  maxAliases: 100_000,
  maxAliasExpansion: 1_000_000,
};
