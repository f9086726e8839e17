/**
 * Comparing the direct block reader (src/krm/yaml-block-read.ts) with yaml's Lexer, Parser and Composer on the
 * same text: the nodes must be equal in every field the function reads (class, value, style, source, range,
 * flow, anchor, tag, entries), and the token count equal to the one yaml's Lexer yields.
 */
import { Lexer, isMap, isPair, isScalar, isSeq, type Node } from 'yaml';
import { DEFAULT_READ_LIMITS } from '../../src/krm/limits.js';
import { readBlockYaml } from '../../src/krm/yaml-block-read.js';
import { composeWithYaml } from '../../src/krm/yaml-read.js';

/** The first difference between two nodes, as a path and both values, or undefined when they are equal. */
export function firstDifference(direct: unknown, composed: unknown, path = '$'): string | undefined {
  const describe = (node: unknown) => (isMap(node) ? 'map' : isSeq(node) ? 'seq' : isScalar(node) ? 'scalar' : isPair(node) ? 'pair' : JSON.stringify(node));
  if (describe(direct) !== describe(composed)) return `${path}: ${describe(direct)} vs ${describe(composed)}`;
  if (!isMap(direct) && !isSeq(direct) && !isScalar(direct)) return direct === composed ? undefined : `${path}: ${String(direct)} vs ${String(composed)}`;
  const a = direct as Node & Record<string, unknown>;
  const b = composed as Node & Record<string, unknown>;
  for (const field of ['value', 'type', 'source', 'anchor', 'tag', 'flow'] as const) {
    if (field === 'value' && !isScalar(a)) continue;
    if (a[field] !== b[field]) return `${path}.${field}: ${JSON.stringify(a[field])} vs ${JSON.stringify(b[field])}`;
  }
  if (JSON.stringify(a.range) !== JSON.stringify(b.range)) return `${path}.range: ${JSON.stringify(a.range)} vs ${JSON.stringify(b.range)}`;
  if (isScalar(a)) return undefined;
  const itemsA = (a as unknown as { items: unknown[] }).items;
  const itemsB = (b as unknown as { items: unknown[] }).items;
  if (itemsA.length !== itemsB.length) return `${path}.items.length: ${itemsA.length} vs ${itemsB.length}`;
  for (let index = 0; index < itemsA.length; index++) {
    const itemA = itemsA[index];
    const itemB = itemsB[index];
    if (isPair(itemA) && isPair(itemB)) {
      const key = firstDifference(itemA.key, itemB.key, `${path}[${index}].key`);
      if (key) return key;
      const value = firstDifference(itemA.value, itemB.value, `${path}[${index}].value`);
      if (value) return value;
    } else {
      const item = firstDifference(itemA, itemB, `${path}[${index}]`);
      if (item) return item;
    }
  }
  return undefined;
}

export function lexerTokenCount(text: string): number {
  let count = 0;
  for (const _ of new Lexer().lex(text)) count++;
  return count;
}

export type BlockReadCheck = { accepted: false } | { accepted: true; difference: string | undefined };

/**
 * Reads `text` with both readers. When the direct reader accepts it, yaml must read it without error into the
 * same documents, with as many tokens; the difference (undefined when none) says what differs.
 */
export function checkBlockRead(text: string): BlockReadCheck {
  const direct = readBlockYaml(text, DEFAULT_READ_LIMITS.maxDepth);
  if (!direct) return { accepted: false };
  let composed;
  try {
    composed = composeWithYaml(text, { ...DEFAULT_READ_LIMITS, maxTokens: Number.MAX_SAFE_INTEGER });
  } catch (error) {
    return { accepted: true, difference: `accepted, but yaml reports: ${(error as Error).message}` };
  }
  if (composed.length !== direct.docs.length) return { accepted: true, difference: `${direct.docs.length} documents vs ${composed.length}` };
  for (let index = 0; index < composed.length; index++) {
    const a = direct.docs[index];
    const b = composed[index];
    if (JSON.stringify(a?.range) !== JSON.stringify(b?.range)) return { accepted: true, difference: `document ${index} range: ${JSON.stringify(a?.range)} vs ${JSON.stringify(b?.range)}` };
    const difference = firstDifference(a?.contents, b?.contents, `document ${index}`);
    if (difference) return { accepted: true, difference };
  }
  const tokens = lexerTokenCount(text);
  if (tokens !== direct.tokens) return { accepted: true, difference: `tokens: ${direct.tokens} vs yaml's lexer ${tokens}` };
  return { accepted: true, difference: undefined };
}
