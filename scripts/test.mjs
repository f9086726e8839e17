// `npm test`: runs every suite with ava and keeps ava's TAP stream in .test-results/ava.tap, from which
// .ci/run takes the pass/fail counts. Suites whose external tool is missing are skipped with the reason
// printed (or fail under CI=true): see test/support/tools.ts.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, '.test-results'), { recursive: true });
const tapFile = createWriteStream(join(root, '.test-results', 'ava.tap'));
const toolsBin = join(root, '.tools', 'bin');

const ava = spawn(process.execPath, [join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--tap', ...process.argv.slice(2)], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, PATH: `${toolsBin}:${process.env.PATH ?? ''}` },
});
ava.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tapFile.write(chunk);
});
ava.on('close', (code) => {
  tapFile.end(() => process.exit(code ?? 1));
});
