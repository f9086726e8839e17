/**
 * The CI tools' command sequences (test/e2e/ci-tools/*.sh) and what each gets for a commit pushed after the
 * mirror's last refresh: the same table for readers that mount the volume (test/integration/transparent/
 * ci-tools.test.ts) and for network readers (test/integration/agent/git-daemon.test.ts), as the README's table.
 */
import { join } from 'node:path';
import { git } from './git-fixtures.js';
import { REPO_ROOT } from './tools.js';

export const CI_TOOLS_DIR = join(REPO_ROOT, 'test', 'e2e', 'ci-tools');

/** What a case needs of the test's world: the repo's URL and its upstream repository. */
export interface ToolWorld {
  readonly url: string;
  readonly upstream: { readonly path: string };
}

export interface ToolCase {
  readonly tool: string;
  readonly args: (w: ToolWorld, dir: string, sha: string) => string[];
  /** What happens with a commit newer than the mirror: checked out, or the documented failure. */
  readonly newer: 'checked-out' | RegExp;
  /** Set up upstream for the tool (GitLab's pipeline ref). */
  readonly before?: (w: ToolWorld, sha: string) => void;
}

export const CI_TOOL_CASES: readonly ToolCase[] = [
  { tool: 'actions-checkout.sh', args: (w, dir, sha) => [w.url, dir, sha, 'main'], newer: 'checked-out' },
  {
    tool: 'gitlab-runner.sh',
    args: (w, dir, sha) => [w.url, dir, sha, 'main', '42'],
    newer: 'checked-out',
    before: (w, sha) => git(['--git-dir', w.upstream.path, 'update-ref', 'refs/pipelines/42', sha]),
  },
  { tool: 'tekton-git-clone.sh', args: (w, dir, sha) => [w.url, dir, sha], newer: 'checked-out' },
  { tool: 'argocd-repo-server.sh', args: (w, dir, sha) => [w.url, dir, sha], newer: 'checked-out' },
  // Fetches by URL and the refspec names no commit: the mirror as of its last refresh, so a newer SHA is missing.
  { tool: 'jenkins-git.sh', args: (w, dir, sha) => [w.url, dir, sha, 'main'], newer: /reference is not a tree|unable to read tree|did not match any|fatal/ },
  { tool: 'git-clone.sh', args: (w, dir, sha) => [w.url, dir, sha], newer: /reference is not a tree|did not match any|fatal/ },
];
