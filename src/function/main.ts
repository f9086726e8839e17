/**
 * `inject-git-cache`: the KRM function's entry point (kustomize exec/container transformer, kpt fn
 * render/eval, Helm post-renderer, the function image). Process I/O lives here and only here.
 */
import { WireFormatError, printResultsOnly } from '../krm/resource-list.js';
import { YamlSyntaxError } from '../krm/yaml-io.js';
import { UsageError, readStdin, run, type Outcome } from './run.js';

function main(): void {
  let outcome: Outcome;
  try {
    outcome = run(process.argv.slice(2), readStdin);
  } catch (error) {
    if (error instanceof YamlSyntaxError || error instanceof WireFormatError || error instanceof UsageError) {
      process.stderr.write(`inject-git-cache: ${error.message}\n`);
    } else {
      // A bug, not bad input: still one line, and a ResourceList saying so, never a stack trace on stdout.
      process.stderr.write(`inject-git-cache: internal error: ${(error as Error)?.message ?? String(error)}\n`);
      if (process.env.GIT_CACHE_DEBUG) process.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
      process.stdout.write(printResultsOnly([{ severity: 'error', message: `internal error: ${(error as Error)?.message ?? String(error)}` }]));
    }
    process.exitCode = 1;
    return;
  }
  for (const line of outcome.stderr) process.stderr.write(`inject-git-cache: ${line}\n`);
  process.stdout.write(outcome.stdout);
  process.exitCode = outcome.exitCode;
}

main();
