/**
 * function/gitcache.schema.json is generated from the zod schema; these tests keep the shipped file in step
 * with the validator and prove it really describes valid and invalid configs.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { gitCacheJsonSchema } from '../../../src/config/json-schema.js';

const shipped = JSON.parse(readFileSync(new URL('../../../function/gitcache.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;

test('the shipped JSON Schema is exactly what the zod schema generates (run npm run gen:schema after changing it)', (t) => {
  t.deepEqual(shipped, gitCacheJsonSchema());
});

test('the JSON Schema names every spec field the validator accepts, including keeper, monitoring and workloadKinds', (t) => {
  const spec = (shipped.properties as Record<string, { properties: Record<string, unknown>; required?: string[] }>).spec;
  t.deepEqual(Object.keys(spec?.properties ?? {}).sort(), [
    'image',
    'imagePullPolicy',
    'keeper',
    'metricsPort',
    'mode',
    'monitoring',
    'mountPath',
    'networkPolicy',
    'node',
    'refreshInterval',
    'repos',
    'resources',
    'selector',
    'transparent',
    'upstreamCache',
    'volume',
    'workloadKinds',
  ]);
  t.deepEqual(spec?.required, ['repos']);
});
