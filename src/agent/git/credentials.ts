/**
 * Per-repo credentials from the mounted Secrets: `<root>/<name>/ssh/{ssh-privatekey,known_hosts}` and
 * `<root>/<name>/https/{username,password}`. Files are read at every git run, so a rotated Secret is used as
 * soon as the kubelet updates the mount. Nothing secret goes into argv, the environment or a log.
 */
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  HTTPS_PASSWORD_FILE,
  HTTPS_USERNAME_FILE,
  SSH_KEY_FILE,
  SSH_KNOWN_HOSTS_FILE,
  httpsCredentialDir,
  sshCredentialDir,
} from '../../shared/names.js';
import { parseRepoUrl } from '../../shared/repo-url.js';
import { writeFileAtomic } from '../atomic-file.js';
import type { Repo } from '../cli.js';
import type { Logger } from '../log.js';
import type { Runtime } from './runtime.js';

export class CredentialError extends Error {}

export interface CredentialSettings {
  readonly credentialsDir: string;
  readonly insecureIgnoreHostKey: boolean;
}

async function readable(path: string): Promise<boolean> {
  try {
    await access(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** Single-quotes a value for the shell that runs GIT_SSH_COMMAND. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The ssh command line git runs; a pure function of the paths so it can be checked in unit tests. */
export function sshCommand(options: { keyPath?: string | undefined; knownHostsPath?: string | undefined; insecure: boolean }): string {
  const parts = ['ssh', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=30', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4'];
  if (options.keyPath) parts.push('-i', shellQuote(options.keyPath));
  if (options.insecure) {
    parts.push('-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR');
  } else {
    if (!options.knownHostsPath) throw new CredentialError('ssh needs a known_hosts file');
    parts.push('-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${shellQuote(options.knownHostsPath)}`, '-o', 'GlobalKnownHostsFile=/dev/null');
  }
  return parts.join(' ');
}

/**
 * ssh refuses a private key that its owner can let others read ("UNPROTECTED PRIVATE KEY FILE"), and Secret
 * volumes default to mode 0644. Such a key is copied to a 0600 file in the process's private tmp dir.
 */
async function usableKeyPath(keyPath: string, repo: Repo, runtime: Runtime): Promise<string> {
  const info = await stat(keyPath);
  if ((info.mode & 0o077) === 0) return keyPath;
  const copy = join(runtime.tmpDir, `key-${repo.name}`);
  await writeFileAtomic(copy, await readFile(keyPath), 0o600);
  return copy;
}

/** Environment additions for one git run against `repo`. */
export async function credentialEnv(repo: Repo, settings: CredentialSettings, runtime: Runtime, logger: Logger): Promise<Record<string, string>> {
  const parsed = parseRepoUrl(repo.url);
  if (!parsed.ok) throw new CredentialError(parsed.problem.message);
  const scheme = parsed.value.scheme;
  if (scheme === 'ssh' || scheme === 'scp') {
    const dir = sshCredentialDir(repo.name, settings.credentialsDir);
    const keyFile = join(dir, SSH_KEY_FILE);
    const knownHostsFile = join(dir, SSH_KNOWN_HOSTS_FILE);
    const keyPath = (await readable(keyFile)) ? await usableKeyPath(keyFile, repo, runtime) : undefined;
    const knownHostsPath = (await readable(knownHostsFile)) ? knownHostsFile : undefined;
    if (!knownHostsPath && !settings.insecureIgnoreHostKey) {
      throw new CredentialError(
        `ssh host key checking needs ${knownHostsFile} (Secret key ${SSH_KNOWN_HOSTS_FILE}); add it, or pass --insecure-ignore-host-key`,
      );
    }
    return { GIT_SSH_COMMAND: sshCommand({ keyPath, knownHostsPath, insecure: settings.insecureIgnoreHostKey }), GIT_SSH_VARIANT: 'ssh' };
  }
  if (scheme === 'https' || scheme === 'http') {
    const dir = httpsCredentialDir(repo.name, settings.credentialsDir);
    const passwordFile = join(dir, HTTPS_PASSWORD_FILE);
    const hasPassword = await readable(passwordFile);
    // So the password is scrubbed should a server or git ever echo it.
    if (hasPassword) logger.addSecret(await readFile(passwordFile, 'utf8'));
    if (hasPassword || (await readable(join(dir, HTTPS_USERNAME_FILE)))) {
      return { GIT_CACHE_HTTPS_CREDENTIALS: dir };
    }
  }
  return {};
}
