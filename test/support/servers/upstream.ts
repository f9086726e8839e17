/**
 * Upstream repositories for the server tests: a bare repo with a few commits, branches and a tag, optionally
 * holding incompressible random blobs so its size on disk is known.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { git } from '../git-fixtures.js';

export { git };

export interface UpstreamOptions {
  /** Number of commits on main (default 3). */
  readonly commits?: number;
  /** Total bytes of random (incompressible) blob content, spread over the commits. */
  readonly randomBytes?: number;
}

export interface Upstream {
  /** Absolute path of the bare repo (`<parent>/<name>.git`). */
  readonly path: string;
  /** Adds a commit on main with the given file content; returns the new head. */
  commit(file: string, content: string | Buffer): string;
  /** `git show-ref` of the bare repo: the refs a mirror must hold. */
  refs(): string;
}

/** Creates `<parent>/<name>.git` with branches main and feature and tag v1. */
export function createUpstream(parent: string, name: string, options: UpstreamOptions = {}): Upstream {
  const path = join(parent, `${name}.git`);
  const work = join(parent, `${name}.work`);
  mkdirSync(work, { recursive: true });
  git(['init', '-q', '--bare', '-b', 'main', path]);
  git(['init', '-q', '-b', 'main', work]);
  git(['config', 'gc.auto', '0'], work);
  const commits = options.commits ?? 3;
  const perCommit = options.randomBytes ? Math.ceil(options.randomBytes / commits) : 0;
  for (let i = 0; i < commits; i++) {
    writeFileSync(join(work, 'README.md'), `commit ${i}\n`);
    if (perCommit > 0) writeFileSync(join(work, `blob-${i}.bin`), randomBytes(perCommit));
    git(['add', '-A'], work);
    git(['commit', '-q', '-m', `commit ${i}`], work);
  }
  git(['tag', 'v1'], work);
  git(['branch', 'feature'], work);
  git(['push', '-q', path, 'main', 'feature', 'v1'], work);
  return {
    path,
    commit(file, content) {
      writeFileSync(join(work, file), content);
      git(['add', '-A'], work);
      git(['commit', '-q', '-m', `update ${file}`], work);
      git(['push', '-q', path, 'main'], work);
      return git(['rev-parse', 'HEAD'], work).trim();
    },
    refs: () => git(['show-ref'], path),
  };
}
