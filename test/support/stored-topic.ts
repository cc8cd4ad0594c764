/** Test helper: a stored topic's fields as a plain object (the store hands out topics decoded as they are read). */
import type { StoredTopic } from '../../services/state/index.ts';

export function fields(t: StoredTopic | undefined): object | undefined {
  if (t === undefined) return undefined;
  const { path, tenant, source, version, value, seq } = t;
  return seq === undefined ? { path, tenant, source, version, value } : { path, tenant, source, version, value, seq };
}
