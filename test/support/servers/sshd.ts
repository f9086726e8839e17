/**
 * A throwaway OpenSSH server on 127.0.0.1 with key-only auth: its own host key, a client key pair, an
 * authorized_keys file and sshd_config, all in a temp dir. Repos are reached as
 * `ssh://<user>@127.0.0.1:<port>/<absolute path>.git`.
 *
 * sshd needs a real account to log in as: the current user (root when run as root, which is allowed to log in
 * with a key because `PermitRootLogin prohibit-password`).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { findTool } from '../tools.js';
import { LOOPBACK, isRoot, makeTempDir, removeDir, startDaemon, waitFor, waitForPort, withPortRetry } from './process.js';

export interface SshServer {
  readonly port: number;
  readonly user: string;
  readonly dir: string;
  /** Client private key (OpenSSH format) that the server accepts. */
  readonly clientPrivateKey: string;
  /** A client private key the server does not accept. */
  readonly unauthorizedPrivateKey: string;
  /** known_hosts line for this server's host key, `[127.0.0.1]:PORT ssh-ed25519 ...`. */
  readonly knownHosts: string;
  /** known_hosts line naming this server's address with a different key (what a MITM would present). */
  readonly wrongKnownHosts: string;
  /** `ssh://user@127.0.0.1:PORT` + absolute repo path. */
  url(absoluteRepoPath: string): string;
  readonly logFile: string;
  log(): string;
  stop(): Promise<void>;
}

function keygen(file: string, comment: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], { stdio: 'ignore' });
}

function publicKey(file: string): string {
  // `ssh-ed25519 AAAA... comment` -> type and key only
  return readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
}

/** `address`: 127.0.0.1, or the test cluster's host address (CLUSTER.hostIP) for an upstream pods can reach. */
export async function startSshd(address: string = LOOPBACK): Promise<SshServer> {
  const sshd = findTool('sshd');
  if (!sshd) throw new Error('sshd not found');
  const dir = makeTempDir('sshd');
  try {
    const hostKey = join(dir, 'host_ed25519');
    const otherHostKey = join(dir, 'other_host_ed25519');
    const clientKey = join(dir, 'client_ed25519');
    const strangerKey = join(dir, 'stranger_ed25519');
    keygen(hostKey, 'git-cache-test-host');
    keygen(otherHostKey, 'git-cache-test-other-host');
    keygen(clientKey, 'git-cache-test-client');
    keygen(strangerKey, 'git-cache-test-stranger');
    const authorizedKeys = join(dir, 'authorized_keys');
    writeFileSync(authorizedKeys, `${publicKey(clientKey)} git-cache-test-client\n`, { mode: 0o600 });
    // The privilege-separation directory is compiled into sshd; Debian only creates it when its service starts.
    if (isRoot() && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755, recursive: true });
    chmodSync(dir, 0o755);
    const user = userInfo().username;
    const logFile = join(dir, 'sshd.log');

    return await withPortRetry(async (port) => {
      const config = join(dir, 'sshd_config');
      writeFileSync(
        config,
        [
          `ListenAddress ${address}`,
          `Port ${port}`,
          `HostKey ${hostKey}`,
          `PidFile ${join(dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${authorizedKeys}`,
          'AuthenticationMethods publickey',
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PermitRootLogin prohibit-password',
          `AllowUsers ${user}`,
          'StrictModes no',
          'UsePAM no',
          'UseDNS no',
          'PrintMotd no',
          'AllowTcpForwarding no',
          'X11Forwarding no',
          'PermitTunnel no',
          'LogLevel VERBOSE',
          '',
        ].join('\n'),
      );
      const daemon = startDaemon(sshd, ['-D', '-e', '-f', config], logFile);
      const readLog = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
      try {
        await waitForPort(daemon, port, 'sshd', readLog, address);
        // The readiness probe's own connection is logged asynchronously; let it land so tests that count
        // connections start from a settled log.
        await waitFor('sshd to log the probe connection', () => (/Connection (reset|closed)|kex_exchange_identification/.test(readLog()) ? true : undefined), 3_000).catch(
          () => undefined,
        );
      } catch (error) {
        await daemon.stop();
        throw error;
      }
      const hostPattern = `[${address}]:${port}`;
      return {
        port,
        user,
        dir,
        clientPrivateKey: readFileSync(clientKey, 'utf8'),
        unauthorizedPrivateKey: readFileSync(strangerKey, 'utf8'),
        knownHosts: `${hostPattern} ${publicKey(hostKey)}\n`,
        wrongKnownHosts: `${hostPattern} ${publicKey(otherHostKey)}\n`,
        url: (repoPath: string) => `ssh://${user}@${address}:${port}${repoPath.startsWith('/') ? '' : '/'}${repoPath}`,
        logFile,
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
