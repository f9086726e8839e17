/**
 * The JSON Schema of the GitCache resource, generated from the zod schema (shipped as
 * function/gitcache.schema.json so editors with the YAML language server validate configs).
 */
import { z } from 'zod';
import { gitCacheSchema } from './schema.js';

export const JSON_SCHEMA_ID = 'https://git-cache.dev/schemas/gitcache.v1alpha1.schema.json';

export function gitCacheJsonSchema(): Record<string, unknown> {
  // `io: 'input'`: what a user may write (defaults make fields optional), not the defaulted result.
  const schema = z.toJSONSchema(gitCacheSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, $id: JSON_SCHEMA_ID, title: 'GitCache (git-cache.dev/v1alpha1)' };
}
