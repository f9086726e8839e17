/**
 * The agent's HTTP listeners. The metrics port (0.0.0.0 by default, scraped by Prometheus from other pods):
 * GET /healthz, /readyz, /metrics, and POST /v1/refresh for this pod's own containers (loopback) or a holder of
 * the volume's token. The optional refresh port (keeper and node mode, behind a Service): /v1/refresh and
 * /healthz only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AgentMetrics } from '../metrics.js';
import { handleRefresh, isRefreshRequest, type RefreshAccess } from './refresh.js';

export interface HttpRoutes {
  readonly metrics: AgentMetrics;
  readonly isReady: () => boolean;
  readonly refresh: RefreshAccess;
}

function healthz(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
}

function metricsRoutes(routes: HttpRoutes) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (isRefreshRequest(req.url)) {
      void handleRefresh(req, res, routes.refresh);
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      healthz(res);
    } else if (path === '/readyz') {
      const ready = routes.isReady();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'waiting for the first sync\n');
    } else if (path === '/metrics') {
      routes.metrics.registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': routes.metrics.registry.contentType }).end(body))
        .catch((error: unknown) => res.writeHead(500).end(String(error)));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz, /readyz, POST /v1/refresh?repo=NAME\n');
    }
  };
}

function refreshRoutes(routes: HttpRoutes) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (isRefreshRequest(req.url)) {
      void handleRefresh(req, res, routes.refresh);
    } else if ((req.url ?? '/').split('?')[0] === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      healthz(res);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: this port serves POST /v1/refresh?repo=NAME\n');
    }
  };
}

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, port: number, address: string): Promise<Server> {
  const server = createServer({ headersTimeout: 10_000, requestTimeout: 15_000 }, handler);
  // Floods: connections beyond this are refused by the kernel backlog / closed at once, in bounded memory.
  server.maxConnections = 512;
  server.maxHeadersCount = 64;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function startMetricsHttp(routes: HttpRoutes, port: number, address: string): Promise<Server> {
  return listen(metricsRoutes(routes), port, address);
}

export function startRefreshHttp(routes: HttpRoutes, port: number, address: string): Promise<Server> {
  return listen(refreshRoutes(routes), port, address);
}

export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export function boundPort(server: Server, fallback: number): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : fallback;
}
