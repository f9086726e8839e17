/**
 * The function's command line as data: argv and stdin in, stdout, stderr lines and the exit code out.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { injectGitCache } from '../inject/transform.js';
import { DEFAULT_READ_LIMITS, limitsForInputBytes, type ReadLimits } from '../krm/limits.js';
import { WireFormatError, printInputWithResults, printResultsOnly, readConfigFile, readInput } from '../krm/resource-list.js';
import { formatResult, hasErrors, type KrmResult } from '../krm/results.js';
import { YamlSyntaxError, checkCharacters, decodeInput } from '../krm/yaml-read.js';
import { CONFIG_API_VERSION, CONFIG_KIND, VERSION } from '../shared/names.js';

const USAGE = `inject-git-cache ${VERSION}: inject a git mirror cache into selected Kubernetes workloads (a KRM function)

Usage:
  inject-git-cache < resource-list.yaml             ResourceList in, ResourceList out (kpt, kustomize)
  inject-git-cache --config gitcache.yaml < in.yaml  plain YAML stream in and out (Helm --post-renderer)

Options:
  --config FILE            the ${CONFIG_KIND} (${CONFIG_API_VERSION}) or ConfigMap functionConfig to use
  --max-input-bytes N      refuse larger input (default ${DEFAULT_READ_LIMITS.maxInputBytes}, ${DEFAULT_READ_LIMITS.maxInputBytes / 1024 / 1024} MiB), and input
                           of more YAML tokens than a quarter of N (what memory grows with)
  --help                   this text
  --version                the version

Results (errors, warnings, what was injected) go into the ResourceList's results, or to stderr for a plain
stream. Exit status 1 when any result is an error; the items are then unchanged. Input is read strictly, as
kustomize and kpt read it (UTF-8, no duplicate keys), with bounds on nesting (${DEFAULT_READ_LIMITS.maxDepth} levels) and
aliases (${DEFAULT_READ_LIMITS.maxAliases} aliases, expanding to at most ${DEFAULT_READ_LIMITS.maxAliasExpansion} nodes).`;

interface Cli {
  configFile: string | undefined;
  limits: ReadLimits;
}

export class UsageError extends Error {}

function parseCli(argv: readonly string[]): Cli | 'help' | 'version' {
  let configFile: string | undefined;
  let limits = DEFAULT_READ_LIMITS;
  const valueOf = (name: string, index: number): string => {
    const arg = argv[index] ?? '';
    if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    const value = argv[index + 1];
    if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
    return value;
  };
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--version') return 'version';
    if (arg === '--config' || arg.startsWith('--config=')) {
      configFile = valueOf('--config', index);
      if (!arg.includes('=')) index++;
    } else if (arg === '--max-input-bytes' || arg.startsWith('--max-input-bytes=')) {
      const value = valueOf('--max-input-bytes', index);
      if (!arg.includes('=')) index++;
      if (!/^[1-9]\d{0,15}$/.test(value)) throw new UsageError(`--max-input-bytes takes a positive whole number of bytes, not "${value}"`);
      limits = limitsForInputBytes(Number(value), limits);
    } else throw new UsageError(`unknown argument "${arg}"; see --help`);
  }
  return { configFile, limits };
}

const STDIN_PROBLEMS: Record<string, string> = {
  EAGAIN: 'stdin is not readable (non-blocking); pipe a ResourceList into it',
  EISDIR: 'stdin is a directory; pipe a ResourceList into it',
  EBADF: 'stdin is closed; pipe a ResourceList into it',
  EINVAL: 'stdin cannot be read; pipe a ResourceList into it',
};

export function readStdin(): Uint8Array {
  try {
    return readFileSync(0);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    throw new UsageError(STDIN_PROBLEMS[code] ?? `cannot read stdin (${code || String(error)})`);
  }
}

export interface Outcome {
  stdout: string;
  stderr: string[];
  exitCode: number;
}

function readText(input: string | Uint8Array, limits: ReadLimits, what: string): string {
  if (typeof input !== 'string') return decodeInput(input, limits, what);
  if (input.length > limits.maxInputBytes && Buffer.byteLength(input) > limits.maxInputBytes) decodeInput(Buffer.from(input), limits, what);
  checkCharacters(input, what);
  return input;
}

function readConfig(file: string, limits: ReadLimits): unknown {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new UsageError(`cannot read --config ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    return readConfigFile(readText(bytes, limits, `--config ${file}`), limits);
  } catch (error) {
    if (error instanceof YamlSyntaxError || error instanceof WireFormatError) throw new UsageError(`--config ${file}: ${error.message}`);
    throw error;
  }
}

/** The whole function as data: argv and stdin in, what to print and the exit code out. */
export function run(argv: readonly string[], stdin: () => string | Uint8Array): Outcome {
  let cli: Cli | 'help' | 'version';
  try {
    cli = parseCli(argv);
  } catch (error) {
    if (error instanceof UsageError) return { stdout: '', stderr: [error.message], exitCode: 1 };
    throw error;
  }
  if (cli === 'help') return { stdout: `${USAGE}\n`, stderr: [], exitCode: 0 };
  if (cli === 'version') return { stdout: `${VERSION}\n`, stderr: [], exitCode: 0 };
  const { limits } = cli;
  const streamAllowed = cli.configFile !== undefined;

  let text: string | undefined;
  let plainStream = streamAllowed;
  // Any failure: the input as it came (when it could be read at all), a one-line reason, exit 1.
  const fail = (message: string): Outcome => {
    const results: KrmResult[] = [{ severity: 'error', message }];
    let stdout: string;
    if (plainStream) stdout = text ?? '';
    else stdout = text === undefined ? printResultsOnly(results) : printInputWithResults(text, results, limits);
    return { stdout, stderr: [message], exitCode: 1 };
  };
  try {
    const fileConfig = cli.configFile !== undefined ? readConfig(cli.configFile, limits) : undefined;
    text = readText(stdin(), limits, 'input');
    const input = readInput(text, streamAllowed ? 'resource-list-or-stream' : 'resource-list', limits);
    plainStream = input.plainStream;
    const { batch } = input;
    const loaded = loadConfig(fileConfig ?? batch.functionConfig);
    let results: KrmResult[] = loaded.ok ? [] : loaded.results;
    if (loaded.ok) {
      const outcome = injectGitCache(batch.items, loaded.config);
      results = outcome.results;
      if (!hasErrors(results)) batch.replaceItems(outcome.isGenerated, outcome.generated);
    }
    const failed = hasErrors(results);
    return {
      stdout: batch.print(plainStream ? [] : results, failed),
      // Also for a ResourceList: kustomize shows only "exit status 1" and the function's stderr, not its results.
      stderr: results.filter((entry) => entry.severity === 'error' || (plainStream && entry.severity === 'warning')).map(formatResult),
      exitCode: failed ? 1 : 0,
    };
  } catch (error) {
    if (error instanceof UsageError || error instanceof YamlSyntaxError || error instanceof WireFormatError) return fail(error.message);
    // A bug, not bad input: still one line and the input unchanged, never a stack trace on stdout.
    if (process.env.GIT_CACHE_DEBUG) process.stderr.write(`${(error as Error)?.stack ?? ''}\n`);
    return fail(`internal error: ${(error as Error)?.message ?? String(error)}`);
  }
}
