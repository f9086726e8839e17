/**
 * The process environment git runs in. The cache container has a read-only root filesystem, an arbitrary
 * non-root UID that may have no passwd entry, and only /tmp and the cache volume writable; git and ssh must
 * work there and must never prompt, run a foreign transport or read system config.
 */
import { constants, existsSync } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { HTTPS_PASSWORD_FILE, HTTPS_USERNAME_FILE } from '../../shared/names.js';
import type { Logger } from '../log.js';

export interface Runtime {
  /** Private (0700) scratch dir of this process: askpass script, key copies, passwd file. */
  readonly tmpDir: string;
  /** Environment every git process gets (before per-repo credentials). */
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly askpassPath: string;
  cleanup(): Promise<void>;
}

/** Transports git may use: the URL validator allows exactly these, and git enforces it again on redirects. */
export const ALLOWED_PROTOCOLS = ['https', 'http', 'ssh', 'git'] as const;

/** `-c` options put before every git subcommand. */
export function gitConfigArgs(): string[] {
  return [
    '-c', 'protocol.allow=never',
    ...ALLOWED_PROTOCOLS.flatMap((p) => ['-c', `protocol.${p}.allow=always`]),
    // A repo on a shared volume must not make the agent (which holds the credentials) run anything.
    '-c', 'core.hooksPath=/dev/null',
    '-c', 'core.fsmonitor=false',
    // Only the Secret's files answer credential prompts; no helper from any config.
    '-c', 'credential.helper=',
    '-c', 'gc.auto=0',
    '-c', 'maintenance.auto=false',
  ];
}

// Debian's libnss-wrapper; other distributions put it beside their other libraries.
const NSS_WRAPPER_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/libnss_wrapper.so',
  '/usr/lib/aarch64-linux-gnu/libnss_wrapper.so',
  '/usr/lib64/libnss_wrapper.so',
  '/usr/lib/libnss_wrapper.so',
];

export function findNssWrapper(candidates: readonly string[] = NSS_WRAPPER_CANDIDATES): string | undefined {
  return candidates.find((path) => existsSync(path));
}

function hasPasswdEntry(): boolean {
  try {
    userInfo();
    return true;
  } catch {
    return false;
  }
}

async function writable(dir: string | undefined): Promise<boolean> {
  if (!dir) return false;
  try {
    await access(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const ASKPASS_SCRIPT = `#!/bin/sh
# git-cache askpass: answers git's username/password prompts from the mounted Secret's files, so the password
# is never in argv, in the environment or in a log. GIT_CACHE_HTTPS_CREDENTIALS holds the directory's path.
dir=\${GIT_CACHE_HTTPS_CREDENTIALS:-}
[ -n "$dir" ] || exit 1
case $1 in
  Username*|username*) file=$dir/${HTTPS_USERNAME_FILE} ;;
  Password*|password*) file=$dir/${HTTPS_PASSWORD_FILE} ;;
  *) exit 1 ;;
esac
[ -r "$file" ] || exit 1
exec cat -- "$file"
`;

/** Variables of the inherited environment that could redirect or reconfigure git. */
function inheritedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    // A private CA for an in-house https server is configuration, not a redirection: kept.
    if (name === 'GIT_SSL_CAINFO' || name === 'GIT_SSL_CAPATH') {
      out[name] = value;
      continue;
    }
    if (/^(GIT_|SSH_ASKPASS|SSH_AUTH_SOCK|LD_PRELOAD|NSS_WRAPPER_|XDG_CONFIG_HOME)/.test(name)) continue;
    out[name] = value;
  }
  return out;
}

export async function prepareRuntime(logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Runtime> {
  const tmpDir = await mkdtemp(join(tmpdir(), 'git-cache-'));
  await chmod(tmpDir, 0o700);
  const askpassPath = join(tmpDir, 'askpass');
  await writeFile(askpassPath, ASKPASS_SCRIPT, { mode: 0o700 });

  const base = inheritedEnv(env);
  if (!(await writable(env.HOME))) {
    const home = join(tmpDir, 'home');
    await mkdir(home, { mode: 0o700 });
    base.HOME = home;
  }
  Object.assign(base, {
    GIT_TERMINAL_PROMPT: '0',
    GIT_ALLOW_PROTOCOL: ALLOWED_PROTOCOLS.join(':'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_ASKPASS: askpassPath,
    GIT_PROTOCOL_FROM_USER: '0',
    LC_ALL: 'C',
    LANG: 'C',
  });

  // OpenSSH's client exits with "No user exists for uid N" when getpwuid() fails, which it does for the
  // arbitrary UIDs of OpenShift-style platforms. nss_wrapper answers getpwuid() from a passwd file we write.
  if (!hasPasswdEntry()) {
    const uid = process.getuid?.() ?? 65532;
    const gid = process.getgid?.() ?? 65532;
    const library = findNssWrapper();
    if (library) {
      const passwd = join(tmpDir, 'passwd');
      const group = join(tmpDir, 'group');
      await writeFile(passwd, `git-cache:x:${uid}:${gid}:git-cache:${base.HOME ?? tmpDir}:/bin/sh\n`, { mode: 0o644 });
      await writeFile(group, `git-cache:x:${gid}:\n`, { mode: 0o644 });
      Object.assign(base, { LD_PRELOAD: library, NSS_WRAPPER_PASSWD: passwd, NSS_WRAPPER_GROUP: group });
      logger.info('nss_wrapper_enabled', { uid, reason: 'no passwd entry for this uid; ssh needs one' });
    } else {
      logger.warn('no_passwd_entry', { uid, message: 'no passwd entry and no libnss_wrapper.so: ssh URLs will fail with "No user exists for uid"' });
    }
  }

  return {
    tmpDir,
    baseEnv: base,
    askpassPath,
    cleanup: () => rm(tmpDir, { recursive: true, force: true }),
  };
}
