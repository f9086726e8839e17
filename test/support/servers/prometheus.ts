/**
 * A real Prometheus (Debian's package) scraping given targets every second, with its TSDB in a temp dir, and a
 * client for its HTTP query API.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTool } from '../tools.js';
import { LOOPBACK, makeTempDir, removeDir, startDaemon, waitFor, waitForPort, withPortRetry } from './process.js';

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

export interface PrometheusServer {
  readonly port: number;
  readonly url: string;
  /** Instant query through `/api/v1/query`; vector results as samples. */
  query(promql: string): Promise<PromSample[]>;
  /** Polls `query` until it returns at least one sample satisfying `accept`. */
  waitForSample(promql: string, accept?: (sample: PromSample) => boolean, timeoutMs?: number): Promise<PromSample>;
  /** Scrape target states from `/api/v1/targets`. */
  targets(): Promise<Array<{ scrapeUrl: string; health: string; lastError: string }>>;
  log(): string;
  stop(): Promise<void>;
}

interface QueryResponse {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

export async function startPrometheus(targets: readonly string[], job = 'git-cache'): Promise<PrometheusServer> {
  const prometheus = findTool('prometheus');
  if (!prometheus) throw new Error('prometheus not found');
  const dir = makeTempDir('prometheus');
  try {
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ${JSON.stringify(job)}
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ${JSON.stringify(targets)}
`,
    );
    const logFile = join(dir, 'prometheus.log');
    const readLog = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    return await withPortRetry(async (port) => {
      const daemon = startDaemon(
        prometheus,
        [
          `--config.file=${config}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=${LOOPBACK}:${port}`,
          '--log.level=info',
        ],
        logFile,
        { cwd: dir },
      );
      const url = `http://${LOOPBACK}:${port}`;
      try {
        await waitForPort(daemon, port, 'prometheus', readLog);
        await waitFor('prometheus to be ready', async () => ((await fetch(`${url}/-/ready`)).ok ? true : undefined), 30_000, 200);
      } catch (error) {
        await daemon.stop();
        throw error;
      }
      const query = async (promql: string): Promise<PromSample[]> => {
        const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
        const body = (await response.json()) as QueryResponse;
        if (body.status !== 'success' || !body.data) throw new Error(`query ${promql} failed: ${body.error ?? response.status}`);
        return body.data.result.map((item) => ({ metric: item.metric, value: Number(item.value[1]) }));
      };
      return {
        port,
        url,
        query,
        waitForSample: (promql, accept = () => true, timeoutMs = 30_000) =>
          waitFor(`prometheus to return ${promql}`, async () => (await query(promql)).find(accept), timeoutMs, 500),
        targets: async () => {
          const body = (await (await fetch(`${url}/api/v1/targets`)).json()) as {
            data: { activeTargets: Array<{ scrapeUrl: string; health: string; lastError: string }> };
          };
          return body.data.activeTargets;
        },
        log: readLog,
        stop: async () => {
          await daemon.stop();
          removeDir(dir);
        },
      };
    });
  } catch (error) {
    removeDir(dir);
    throw error;
  }
}
