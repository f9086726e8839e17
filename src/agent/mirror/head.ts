/**
 * A mirror's HEAD follows upstream's default branch. `git clone --mirror` copies upstream's HEAD once and
 * `git fetch` never updates it (git 2.48's remote.origin.followRemoteHEAD is not in the git these images
 * ship), so after upstream switches its default branch (master -> main) and deletes the old one, the mirror's
 * HEAD would point at nothing: clones from it find no branch to check out, and the helper's "HEAD on upstream's
 * default branch" would be wrong. The agent asks where upstream's HEAD points (`git ls-remote --symref REMOTE
 * HEAD`: one ls-refs request, no objects) right after a fetch when the mirror's HEAD dangles, and otherwise at
 * most once per HEAD_CHECK_INTERVAL_MS, so the git host sees no extra request per refresh.
 */

/** How often a mirror's HEAD is compared with upstream's when it does not dangle. */
export const HEAD_CHECK_INTERVAL_MS = 60 * 60 * 1000;

const BRANCH_REF = /^refs\/heads\/[A-Za-z0-9._/+@-]+$/;

/** The branch upstream's HEAD points to, from `git ls-remote --symref REMOTE HEAD`; undefined when detached or absent. */
export function parseSymrefHead(output: string): string | undefined {
  for (const line of output.split('\n')) {
    const match = /^ref: (\S+)\tHEAD$/.exec(line);
    if (match?.[1] !== undefined && BRANCH_REF.test(match[1]) && !match[1].includes('..')) return match[1];
  }
  return undefined;
}

/** Whether to ask upstream where its HEAD points after this fetch. */
export function headCheckDue(now: number, lastCheckedAt: number | undefined, dangling: boolean, intervalMs = HEAD_CHECK_INTERVAL_MS): boolean {
  return dangling || lastCheckedAt === undefined || now - lastCheckedAt >= intervalMs;
}
