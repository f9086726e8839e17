/**
 * `git daemon` on 127.0.0.1, read-only, exporting every repo under a base path: `git://127.0.0.1:PORT/<rel>`.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOOPBACK, makeTempDir, removeDir, startDaemon, waitForPort, withPortRetry } from './process.js';

export interface GitDaemonServer {
  readonly port: number;
  readonly basePath: string;
  url(relativePath: string): string;
  log(): string;
  stop(): Promise<void>;
}

/** Serves `basePath` (a fresh temp dir when omitted; then it is removed on stop). */
export async function startGitDaemon(basePath?: string): Promise<GitDaemonServer> {
  const ownDir = makeTempDir('git-daemon');
  const base = basePath ?? join(ownDir, 'repos');
  const logFile = join(ownDir, 'git-daemon.log');
  const readLog = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  if (!basePath) mkdirSync(base);
  try {
    return await withPortRetry(async (port) => {
      const daemon = startDaemon(
        'git',
        ['daemon', '--reuseaddr', `--listen=${LOOPBACK}`, `--port=${port}`, `--base-path=${base}`, '--export-all', '--informative-errors', '--verbose', base],
        logFile,
      );
      try {
        await waitForPort(daemon, port, 'git daemon', readLog);
      } catch (error) {
        await daemon.stop();
        throw error;
      }
      return {
        port,
        basePath: base,
        url: (relativePath: string) => `git://${LOOPBACK}:${port}/${relativePath.replace(/^\/+/, '')}`,
        log: readLog,
        stop: async () => {
          await daemon.stop();
          removeDir(ownDir);
        },
      };
    });
  } catch (error) {
    removeDir(ownDir);
    throw error;
  }
}
