/**
 * Bounds on what the function reads, so that no input (an alias bomb, a 10,000-deep nesting, a huge stream)
 * can make it run for minutes or die out of memory: each is checked in linear time, before the work it bounds.
 */
export interface ReadLimits {
  /** Largest input accepted on stdin, in bytes (flag `--max-input-bytes`). */
  readonly maxInputBytes: number;
  /** Deepest nesting of mappings and sequences (kyaml refuses more than 10,000; no manifest comes close to this). */
  readonly maxDepth: number;
  /** Most aliases (`*name`) in one input. */
  readonly maxAliases: number;
  /** Most nodes that aliases may add when expanded, over the whole input (what a "billion laughs" inflates). */
  readonly maxAliasExpansion: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = {
  maxInputBytes: 64 * 1024 * 1024,
  maxDepth: 1000,
  maxAliases: 100_000,
  maxAliasExpansion: 1_000_000,
};
