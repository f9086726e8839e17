// Builds `dist/inject-git-cache-linux-x64`: a Node single executable application (SEA) holding the function
// bundle, for Argo CD repo-servers and CI images without Node. Run by `npm run build:sea` (after `npm run build`).
//
// Steps (Node 20 SEA): `node --experimental-sea-config` turns the CommonJS bundle into a preparation blob, a
// copy of this very `node` binary gets the blob injected as the NODE_SEA_BLOB resource with postject, and the
// sentinel fuse is flipped so the binary runs the blob instead of acting as `node`.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'function', 'inject-git-cache');
const output = join(root, 'dist', 'inject-git-cache-linux-x64');
// The fuse string Node's SEA support looks for (documented in Node's single-executable-applications docs).
const SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function fail(message) {
  process.stderr.write(`build-sea: ${message}\n`);
  process.exit(1);
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  // The host `node` binary becomes the executable, so it can only target the platform it runs on.
  fail(`the SEA is built from the running node binary; run this on linux-x64 (this is ${process.platform}-${process.arch})`);
}
if (!existsSync(bundle)) fail(`${bundle} is missing; run \`npm run build\` first`);
if (!readFileSync(process.execPath).includes(SENTINEL_FUSE)) {
  fail(`${process.execPath} has no SEA fuse (a distribution's node built without SEA support?); use an official Node build`);
}

function tryStrip(file) {
  try {
    execFileSync('strip', ['--strip-all', file], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const work = mkdtempSync(join(tmpdir(), 'git-cache-sea-'));
try {
  const blob = join(work, 'sea-prep.blob');
  const seaConfig = join(work, 'sea-config.json');
  writeFileSync(
    seaConfig,
    JSON.stringify({
      main: bundle,
      output: blob,
      // The function's stderr is read by kustomize/kpt/helm users: no "experimental feature" warning there.
      disableExperimentalSEAWarning: true,
      // V8 code cache of the bundle in the blob: start-up skips compiling the bundle.
      useCodeCache: true,
    }),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: ['ignore', 'ignore', 'inherit'] });

  mkdirSync(dirname(output), { recursive: true });
  rmSync(output, { force: true });
  copyFileSync(process.execPath, output);
  chmodSync(output, 0o755);
  // Node's official binary carries its full symbol table (~12 MiB). Dropping it (.symtab only: the dynamic
  // symbols native addons link against stay) must happen before the injection: stripping an injected binary
  // breaks it. Skipped when binutils' strip is absent or GIT_CACHE_SEA_STRIP=0.
  const stripped = process.env.GIT_CACHE_SEA_STRIP !== '0' && tryStrip(output);
  const { inject } = createRequire(import.meta.url)('postject');
  await inject(output, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SENTINEL_FUSE });

  const version = execFileSync(output, ['--version'], { encoding: 'utf8', env: { PATH: '/nonexistent' } }).trim();
  const sizeMiB = (statSync(output).size / 2 ** 20).toFixed(1);
  process.stdout.write(`build-sea: ${output} (${sizeMiB} MiB, node ${process.version}${stripped ? ', stripped' : ''}) reports version ${version}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
