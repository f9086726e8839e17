/**
 * KRM function results (the `results` of a ResourceList), as kpt and kustomize read them.
 * https://github.com/kubernetes-sigs/kustomize/blob/master/cmd/config/docs/api-conventions/functions-spec.md
 */
export type Severity = 'error' | 'warning' | 'info';

export interface ResourceRef {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
}

export interface KrmResult {
  severity: Severity;
  message: string;
  resourceRef?: ResourceRef;
  field?: { path: string };
  file?: { path: string; index?: number };
}

export function hasErrors(results: readonly KrmResult[]): boolean {
  return results.some((result) => result.severity === 'error');
}

/** One line per result for stderr (plain-stream mode has no ResourceList to carry them). */
export function formatResult(result: KrmResult): string {
  const ref = result.resourceRef;
  const where = ref ? ` [${ref.kind ?? '?'}${ref.namespace ? ` ${ref.namespace}/` : ' '}${ref.name ?? '?'}]` : '';
  const field = result.field ? ` (${result.field.path})` : '';
  return `${result.severity}${where}${field}: ${result.message}`;
}
