/**
 * Git smart HTTP the way many self-hosted servers serve it: nginx with basic auth in front of fcgiwrap running
 * `git http-backend`. Everything (config, htpasswd, sockets, pid, temp and log files) lives in a temp dir.
 * Repos are `http://127.0.0.1:PORT/<path relative to projectRoot>`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTool } from '../tools.js';
import { LOOPBACK, isRoot, makeTempDir, removeDir, startDaemon, waitFor, waitForPort, withPortRetry, type Daemon } from './process.js';

export const GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

export interface SmartHttpServer {
  readonly port: number;
  /** Directory served as GIT_PROJECT_ROOT: put bare repos here. */
  readonly projectRoot: string;
  readonly username: string;
  readonly password: string;
  /** PEM file to trust (GIT_SSL_CAINFO) when serving https. */
  readonly caFile: string | undefined;
  /** `http(s)://127.0.0.1:PORT/<relativePath>` (no credentials in it). */
  url(relativePath: string): string;
  /** nginx access + error log and fcgiwrap's output, for leak checks. */
  logs(): string;
  readonly logFiles: readonly string[];
  stop(): Promise<void>;
}

export interface SmartHttpOptions {
  readonly username?: string;
  readonly password: string;
  /** Serve https with a fresh self-signed certificate for 127.0.0.1 (clients trust it through `caFile`). */
  readonly tls?: boolean;
  /** Listen address: 127.0.0.1, or the test cluster's host address (CLUSTER.hostIP) or a pod network's gateway for pods (the TLS certificate names it). */
  readonly host?: string;
}

/** A self-signed certificate valid for IP 127.0.0.1; returns [certificate, key] paths. */
function selfSignedCertificate(dir: string, host: string): [string, string] {
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${host}`, '-addext', `subjectAltName=IP:${host}`, '-keyout', key, '-out', cert],
    { stdio: 'ignore' },
  );
  return [cert, key];
}

function apr1Hash(password: string): string {
  // -stdin keeps the password out of openssl's argv.
  return execFileSync('openssl', ['passwd', '-apr1', '-stdin'], { input: `${password}\n`, encoding: 'utf8' }).trim();
}

export async function startSmartHttp(options: SmartHttpOptions): Promise<SmartHttpServer> {
  const nginx = findTool('nginx');
  const fcgiwrap = findTool('fcgiwrap');
  if (!nginx || !fcgiwrap) throw new Error('nginx and fcgiwrap are required');
  if (!existsSync(GIT_HTTP_BACKEND)) throw new Error(`${GIT_HTTP_BACKEND} not found`);
  const username = options.username ?? 'git-user';
  const host = options.host ?? LOOPBACK;
  const dir = makeTempDir('smart-http');
  const daemons: Daemon[] = [];
  const stopAll = async (): Promise<void> => {
    for (const daemon of daemons.reverse()) await daemon.stop();
  };
  try {
    const projectRoot = join(dir, 'repos');
    const temp = join(dir, 'nginx-temp');
    mkdirSync(projectRoot);
    mkdirSync(temp);
    writeFileSync(join(dir, 'htpasswd'), `${username}:${apr1Hash(options.password)}\n`, { mode: 0o644 });
    const socket = join(dir, 'fcgiwrap.sock');
    const fcgiLog = join(dir, 'fcgiwrap.log');
    const fcgi = startDaemon(fcgiwrap, ['-c', '4', '-p', GIT_HTTP_BACKEND, '-s', `unix:${socket}`], fcgiLog);
    daemons.push(fcgi);
    await waitFor('fcgiwrap socket', () => (existsSync(socket) ? true : undefined), 10_000);
    const accessLog = join(dir, 'access.log');
    const errorLog = join(dir, 'error.log');
    const tls = options.tls === true ? selfSignedCertificate(dir, host) : undefined;
    const scheme = tls ? 'https' : 'http';
    const readLogs = (): string =>
      [accessLog, errorLog, fcgiLog, join(dir, 'nginx.out')].map((file) => (existsSync(file) ? readFileSync(file, 'utf8') : '')).join('\n');

    return await withPortRetry(async (port) => {
      const config = join(dir, 'nginx.conf');
      writeFileSync(
        config,
        `${isRoot() ? 'user root root;\n' : ''}daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${errorLog} info;
events { worker_connections 64; }
http {
  access_log ${accessLog} combined;
  client_body_temp_path ${temp}/body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  client_max_body_size 0;
  server {
    listen ${host}:${port}${tls ? ' ssl' : ''};
${tls ? `    ssl_certificate ${tls[0]};\n    ssl_certificate_key ${tls[1]};\n` : ''}    server_name localhost;
    location / {
      auth_basic "git";
      auth_basic_user_file ${join(dir, 'htpasswd')};
      fastcgi_pass unix:${socket};
      fastcgi_param SCRIPT_FILENAME ${GIT_HTTP_BACKEND};
      fastcgi_param GIT_PROJECT_ROOT ${projectRoot};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO $uri;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param REMOTE_USER $remote_user;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param HTTP_GIT_PROTOCOL $http_git_protocol;
      fastcgi_param HTTPS $https if_not_empty;
    }
  }
}
`,
      );
      const server = startDaemon(nginx, ['-p', dir, '-c', config, '-e', errorLog], join(dir, 'nginx.out'));
      try {
        await waitForPort(server, port, 'nginx', readLogs, host);
      } catch (error) {
        await server.stop();
        throw error;
      }
      daemons.push(server);
      return {
        port,
        projectRoot,
        username,
        password: options.password,
        caFile: tls?.[0],
        url: (relativePath: string) => `${scheme}://${host}:${port}/${relativePath.replace(/^\/+/, '')}`,
        logs: readLogs,
        logFiles: [accessLog, errorLog, fcgiLog],
        stop: async () => {
          await stopAll();
          removeDir(dir);
        },
      };
    });
  } catch (error) {
    await stopAll();
    removeDir(dir);
    throw error;
  }
}
