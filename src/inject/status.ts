/**
 * The `git-cache.dev/status` annotation: a record of exactly what injection added to a pod template, so that a
 * later run (after a config change, or when the workload is no longer selected) removes precisely that and
 * nothing of the user's, then injects afresh. Running twice is therefore byte-identical to running once.
 */
import { z } from 'zod';

export const injectionStatusSchema = z.object({
  version: z.string(),
  mode: z.string(),
  repos: z.array(z.string()),
  initContainers: z.array(z.string()),
  containers: z.array(z.string()),
  volumes: z.array(z.string()),
  env: z.array(z.string()),
  /** Per container, env var names the user had defined already (kept, not ours to remove). */
  userEnv: z.record(z.string(), z.array(z.string())).optional(),
  /** Set when injection added the pod's securityContext.fsGroup. */
  fsGroup: z.number().int().optional(),
});

export type InjectionStatus = z.infer<typeof injectionStatusSchema>;

export type StatusReadResult = { ok: true; status: InjectionStatus | undefined } | { ok: false; message: string };

export function readStatus(annotation: unknown): StatusReadResult {
  if (annotation === undefined || annotation === null) return { ok: true, status: undefined };
  if (typeof annotation !== 'string') return { ok: false, message: 'the git-cache.dev/status annotation is not a string' };
  let json: unknown;
  try {
    json = JSON.parse(annotation);
  } catch {
    return { ok: false, message: 'the git-cache.dev/status annotation is not valid JSON; remove it and what it describes, then run again' };
  }
  const parsed = injectionStatusSchema.safeParse(json);
  if (!parsed.success) return { ok: false, message: 'the git-cache.dev/status annotation was not written by this function; remove it and run again' };
  return { ok: true, status: parsed.data };
}

/** Compact, key-ordered JSON so the annotation is stable across runs. */
export function formatStatus(status: InjectionStatus): string {
  const ordered: InjectionStatus = {
    version: status.version,
    mode: status.mode,
    repos: status.repos,
    initContainers: status.initContainers,
    containers: status.containers,
    volumes: status.volumes,
    env: status.env,
    ...(status.userEnv && Object.keys(status.userEnv).length > 0 ? { userEnv: status.userEnv } : {}),
    ...(status.fsGroup !== undefined ? { fsGroup: status.fsGroup } : {}),
  };
  return JSON.stringify(ordered);
}
