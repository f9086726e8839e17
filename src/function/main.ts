/**
 * `inject-git-cache`: the KRM function's entry point (kustomize exec/container transformer, kpt fn
 * render/eval, Helm post-renderer, the function image). Process I/O lives here and only here.
 */
import { readStdin, run } from './run.js';

const outcome = run(process.argv.slice(2), readStdin);
for (const line of outcome.stderr) process.stderr.write(`inject-git-cache: ${line}\n`);
process.stdout.write(outcome.stdout);
process.exitCode = outcome.exitCode;
