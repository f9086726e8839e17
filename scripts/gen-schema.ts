// Writes function/gitcache.schema.json (JSON Schema for editors) from the zod schema, the single source.
// `npm run gen:schema`; test/unit/config/json-schema.test.ts fails when the committed file is out of date.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gitCacheJsonSchema } from '../src/config/json-schema.js';

const target = fileURLToPath(new URL('../function/gitcache.schema.json', import.meta.url));
writeFileSync(target, `${JSON.stringify(gitCacheJsonSchema(), null, 2)}\n`);
console.log(`wrote ${target}`);
