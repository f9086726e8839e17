/**
 * Optional read-only `git daemon` for pods that fetch over the network instead of mounting the volume:
 * upload-pack only, exporting exactly this agent's mirror directories (--strict-paths with one whitelist
 * entry per mirror, so neither staging dirs nor anything else under the cache dir is reachable).
 * URL: git://HOST:PORT/<key>.git
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Repo } from '../cli.js';
import type { Logger } from '../log.js';
import { mirrorDir } from '../mirror/mirror.js';

export interface GitDaemonOptions {
  readonly cacheDir: string;
  readonly repos: readonly Repo[];
  readonly address: string;
  readonly port: number;
  readonly env: Readonly<Record<string, string>>;
}

export function gitDaemonArgs(options: GitDaemonOptions): string[] {
  return [
    '-c', 'core.hooksPath=/dev/null',
    'daemon',
    '--reuseaddr',
    `--listen=${options.address}`,
    `--port=${options.port}`,
    `--base-path=${options.cacheDir}`,
    '--strict-paths',
    '--export-all',
    '--disable=receive-pack',
    '--disable=upload-archive',
    '--forbid-override=receive-pack',
    '--forbid-override=upload-archive',
    '--forbid-override=upload-pack',
    '--max-connections=64',
    '--timeout=60',
    '--init-timeout=10',
    '--',
    ...options.repos.map((repo) => mirrorDir(options.cacheDir, repo)),
  ];
}

export interface RunningDaemon {
  stop(): Promise<void>;
}

/** Starts the daemon and restarts it (after 5 s) should it exit while the agent runs. */
export function startGitDaemon(options: GitDaemonOptions, logger: Logger): RunningDaemon {
  let child: ChildProcess | undefined;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;
  const start = (): void => {
    child = spawn('git', gitDaemonArgs(options), { env: options.env, stdio: ['ignore', 'ignore', 'pipe'] });
    logger.info('git_daemon_started', { address: options.address, port: options.port });
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logger.debug('git_daemon', { line });
    });
    child.on('error', (error) => logger.error('git_daemon_failed', { reason: error.message }));
    child.on('close', (code, signal) => {
      if (stopping) return;
      logger.error('git_daemon_exited', { code, signal, action: 'restarting in 5s' });
      restartTimer = setTimeout(start, 5000);
    });
  };
  start();
  return {
    stop: async () => {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      const current = child;
      if (!current || current.exitCode !== null || current.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        current.once('close', () => resolve());
        current.kill('SIGTERM');
      });
    },
  };
}
