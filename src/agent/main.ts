/**
 * `git-cache`: the mirror agent (the cache container's program). Exit codes: 0 success, 1 failure with a
 * one-line reason (the last log line), 2 usage error (one plain line on stderr). Never a stack trace.
 */
import { mkdir } from 'node:fs/promises';
import { AGENT_BINARY } from '../shared/agent-cli.js';
import { errorMessage, syncAll } from './mirror/sync.js';
import { parseArgs, type AgentOptions } from './cli.js';
import { ensureRefreshToken, installClientFiles } from './clone-helper/install.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics } from './metrics.js';
import { createMaintenanceHook, logMaintenance, mirrorsInCacheDir } from './maintenance/hook.js';
import { maintainMirror } from './maintenance/maintain.js';
import { removeOrphanStaging, type MirrorContext } from './mirror/mirror.js';
import { prepareRuntime } from './git/runtime.js';
import { serve } from './serving/serve.js';
import { statVolume } from './mirror/volume.js';
import { waitForMirrors, waitForServedMirrors } from './mirror/wait.js';

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

async function run(options: AgentOptions, logger: Logger, stop: AbortController): Promise<number> {
  logger.info('start', {
    command: options.command,
    ...(options.cacheUrl !== undefined ? { cacheUrl: options.cacheUrl } : { cacheDir: options.cacheDir }),
    repos: options.repos.map((r) => `${r.name}=${r.key}`),
    uid: process.getuid?.(),
  });
  if (options.insecureIgnoreHostKey) {
    logger.warn('insecure_ignore_host_key', { message: 'ssh host keys are NOT checked (--insecure-ignore-host-key): a man in the middle can serve any content' });
  }
  if (options.command === 'wait' && options.cacheUrl === undefined) {
    await waitForMirrors(options, logger, stop.signal);
    return EXIT_OK;
  }

  if (options.command === 'wait') {
    // --cache-url: another git-cache serves the mirrors; git runs with the base environment only.
    const runtime = await prepareRuntime(logger);
    try {
      await waitForServedMirrors(options, runtime, logger, stop.signal);
      return EXIT_OK;
    } finally {
      await runtime.cleanup();
    }
  }

  if (options.command !== 'maintain') await mkdir(options.cacheDir, { recursive: true });
  const runtime = await prepareRuntime(logger);
  try {
    const ctx: MirrorContext = {
      cacheDir: options.cacheDir,
      runtime,
      logger,
      credentials: { credentialsDir: options.credentialsDir, insecureIgnoreHostKey: options.insecureIgnoreHostKey },
      signal: stop.signal,
      recovered: new Set(),
      ...(options.upstreamCache !== undefined ? { tier: { base: options.upstreamCache, waitMs: options.upstreamCacheWaitMs } } : {}),
    };
    if (options.command === 'maintain') return await maintain(options, ctx, stop);
    const maintenance = createMaintenanceHook({ enabled: options.maintenance, budgetMs: options.maintenanceBudgetMs, commitGraph: options.commitGraph });
    const installed = await installClientFiles(options.cacheDir, options.repos.map((r) => r.key));
    if (installed.length > 0) logger.info('client_files_installed', { paths: installed });
    await removeOrphanStaging(ctx, new Set(options.repos.map((r) => r.key)));

    if (options.command === 'sync') {
      const outcomes = await syncAll(ctx, options);
      for (const outcome of outcomes) {
        if (outcome.ok && outcome.result.action !== 'coalesced' && !stop.signal.aborted) await maintenance.afterRefresh(ctx, outcome.repo);
      }
      const failed = outcomes.filter((o) => !o.ok);
      if (stop.signal.aborted) return EXIT_OK;
      if (failed.length > 0) {
        logger.error('sync_failed_summary', {
          message: failed.map((o) => `${o.repo.name}: ${o.ok ? '' : o.reason}`).join('; '),
        });
        return EXIT_FAILURE;
      }
      logger.info('sync_done', { repos: outcomes.map((o) => `${o.repo.name}:${o.ok ? o.result.action : 'failed'}`) });
      return EXIT_OK;
    }

    const metrics = createMetrics(
      options.repos.map((r) => r.name),
      { refreshIntervalSeconds: options.intervalMs / 1000, volumeSizeBytes: options.volumeSizeBytes, volumeStats: () => statVolume(options.cacheDir) },
    );
    const refreshToken = await ensureRefreshToken(options.cacheDir).catch((error: unknown) => {
      logger.warn('refresh_token_unavailable', { reason: errorMessage(error), effect: 'only loopback clients may ask for a refresh' });
      return undefined;
    });
    await serve({ options, ctx, logger, metrics, stop, refreshToken, maintenance });
    logger.info('stopped', { reason: 'signal' });
    return EXIT_OK;
  } finally {
    await runtime.cleanup();
  }
}

/** `git-cache maintain`: every named mirror (or every mirror in the cache dir), one after the other. */
async function maintain(options: AgentOptions, ctx: MirrorContext, stop: AbortController): Promise<number> {
  const repos = options.repos.length > 0 ? options.repos : await mirrorsInCacheDir(options.cacheDir);
  if (repos.length === 0) {
    ctx.logger.warn('no_mirrors', { message: `no mirrors in ${options.cacheDir}` });
    return EXIT_OK;
  }
  const failed: string[] = [];
  for (const repo of repos) {
    if (stop.signal.aborted) return EXIT_OK;
    const report = await maintainMirror(ctx, repo, { budgetMs: options.maintenanceBudgetMs, waitForLock: true, trigger: 'requested', commitGraph: options.commitGraph });
    logMaintenance(ctx.logger, repo, 'requested', report);
    if (report.result !== 'success' && report.result !== 'stopped') failed.push(`${repo.name}: ${report.reason ?? report.result}`);
  }
  if (stop.signal.aborted) return EXIT_OK;
  if (failed.length > 0) {
    ctx.logger.error('maintenance_failed_summary', { message: failed.join('; ') });
    return EXIT_FAILURE;
  }
  return EXIT_OK;
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseArgs(argv, process.env);
  if (parsed.kind === 'help' || parsed.kind === 'version') {
    process.stdout.write(`${parsed.text}\n`);
    return EXIT_OK;
  }
  if (parsed.kind === 'usage') {
    process.stderr.write(`${AGENT_BINARY}: ${parsed.message}\n`);
    return EXIT_USAGE;
  }
  const { options } = parsed;
  const logger = createLogger(options.logLevel);
  const stop = new AbortController();
  const onStop = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) return;
    logger.info('stopping', { signal });
    stop.abort();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  // serve installs its own SIGHUP handler; elsewhere SIGHUP must not kill the process mid-rename.
  process.on('SIGHUP', () => undefined);
  try {
    return await run(options, logger, stop);
  } catch (error) {
    logger.error('fatal', { message: errorMessage(error) });
    return EXIT_FAILURE;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Open handles (a git we could not stop) must not keep a stopped agent alive.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (error: unknown) => {
    process.stderr.write(`${AGENT_BINARY}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(EXIT_FAILURE);
  },
);
