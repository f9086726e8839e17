/**
 * Kubernetes LabelSelector semantics (matchLabels AND every matchExpression).
 */
import type { LabelSelector } from '../config/schema.js';

export type Labels = Readonly<Record<string, string>>;

export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  // Own properties only: a label or selector key `__proto__` is a key like any other.
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  for (const requirement of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, requirement.key);
    const value = present ? labels[requirement.key] : undefined;
    const values = requirement.values ?? [];
    switch (requirement.operator) {
      case 'In':
        if (!present || !values.includes(value ?? '')) return false;
        break;
      case 'NotIn':
        if (present && values.includes(value ?? '')) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
    }
  }
  return true;
}
