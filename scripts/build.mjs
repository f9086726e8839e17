// Builds the runnable artifacts from src/ with esbuild: prebuilt bundles start fast (no TypeScript loader).
// Run by `npm ci` / `npm install` through the `prepare` script.
import { build } from 'esbuild';
import { chmod, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Each entry: a TypeScript entry point and the bundle it becomes. */
const bundles = [
  // The KRM function: one self-contained CommonJS file, usable as kustomize exec.path, a Kptfile exec step,
  // `kpt fn eval --exec`, a Helm post-renderer, and the function image's entrypoint. CommonJS so it runs
  // wherever it is copied (no package.json needed beside it) and can become a Node single executable.
  { entry: 'src/function/main.ts', outfile: 'function/inject-git-cache', format: 'cjs', executable: true },
  // The mirror agent (`git-cache`), started through bin/git-cache.js.
  { entry: 'src/agent/main.ts', outfile: 'dist/git-cache.mjs', format: 'esm', executable: false },
];

for (const bundle of bundles) {
  if (!existsSync(join(root, bundle.entry))) continue;
  const outfile = join(root, bundle.outfile);
  await mkdir(dirname(outfile), { recursive: true });
  await build({
    entryPoints: [join(root, bundle.entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: bundle.format,
    banner: {
      js:
        bundle.format === 'esm'
          ? "#!/usr/bin/env node\nimport { createRequire as __gcCreateRequire } from 'node:module'; const require = __gcCreateRequire(import.meta.url);"
          : '#!/usr/bin/env node',
    },
    legalComments: 'none',
    logLevel: 'warning',
  });
  if (bundle.executable) await chmod(outfile, 0o755);
}
