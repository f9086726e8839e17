/**
 * The function's command line as data: argv and stdin in, stdout, stderr lines and the exit code out.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { injectGitCache } from '../inject/transform.js';
import {
  RESOURCE_LIST_KIND,
  readConfigFile,
  readResourceList,
  readResourceStream,
  type ItemBatch,
} from '../krm/resource-list.js';
import { formatResult, hasErrors, type KrmResult } from '../krm/results.js';
import { CONFIG_API_VERSION, CONFIG_KIND, VERSION } from '../shared/names.js';

const USAGE = `inject-git-cache ${VERSION}: inject a git mirror cache into selected Kubernetes workloads (a KRM function)

Usage:
  inject-git-cache < resource-list.yaml             ResourceList in, ResourceList out (kpt, kustomize)
  inject-git-cache --config gitcache.yaml < in.yaml  plain YAML stream in and out (Helm --post-renderer)

Options:
  --config FILE   the ${CONFIG_KIND} (${CONFIG_API_VERSION}) or ConfigMap functionConfig to use
  --help          this text
  --version       the version

Results (errors, warnings, what was injected) go into the ResourceList's results, or to stderr for a plain
stream. Exit status 1 when any result is an error; the items are then unchanged.`;

interface Cli {
  configFile: string | undefined;
}

export class UsageError extends Error {}

function parseCli(argv: readonly string[]): Cli | 'help' | 'version' {
  let configFile: string | undefined;
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--version') return 'version';
    if (arg === '--config') {
      configFile = argv[++index];
      if (!configFile) throw new UsageError('--config needs a file');
    } else if (arg.startsWith('--config=')) configFile = arg.slice('--config='.length);
    else throw new UsageError(`unknown argument "${arg}"; see --help`);
  }
  return { configFile };
}

export function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EAGAIN') throw new UsageError('stdin is not readable; pipe a ResourceList into it');
    throw error;
  }
}

function looksLikeResourceList(text: string): boolean {
  return new RegExp(`^kind:\\s*["']?${RESOURCE_LIST_KIND}["']?\\s*$`, 'm').test(text);
}

export interface Outcome {
  stdout: string;
  stderr: string[];
  exitCode: number;
}

/** The whole function as data: argv and stdin in, what to print and the exit code out. */
export function run(argv: readonly string[], stdin: () => string): Outcome {
  const cli = parseCli(argv);
  if (cli === 'help') return { stdout: `${USAGE}\n`, stderr: [], exitCode: 0 };
  if (cli === 'version') return { stdout: `${VERSION}\n`, stderr: [], exitCode: 0 };

  let fileConfig: unknown;
  if (cli.configFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(cli.configFile, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read --config ${cli.configFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    try {
      fileConfig = readConfigFile(text);
    } catch (error) {
      throw new UsageError(`--config ${cli.configFile}: ${(error as Error).message}`);
    }
  }

  const input = stdin();
  const plainStream = cli.configFile !== undefined && !looksLikeResourceList(input);
  const batch: ItemBatch = plainStream ? readResourceStream(input) : readResourceList(input);
  const loaded = loadConfig(fileConfig ?? batch.functionConfig);
  let results: KrmResult[] = loaded.ok ? [] : loaded.results;
  if (loaded.ok) {
    const outcome = injectGitCache(batch.items, loaded.config);
    results = outcome.results;
    if (!hasErrors(results)) batch.replaceItems(outcome.isGenerated, outcome.generated);
  }
  const exitCode = hasErrors(results) ? 1 : 0;
  return {
    stdout: batch.print(plainStream ? [] : results),
    // Also for a ResourceList: kustomize shows only "exit status 1" and the function's stderr, not its results.
    stderr: results.filter((entry) => entry.severity === 'error' || (plainStream && entry.severity === 'warning')).map(formatResult),
    exitCode,
  };
}

