/**
 * Kubernetes quantities as `spec.volume.size` holds them (`5Gi`, `500Mi`, `10G`, `1.5Gi`), read as bytes by the
 * agent (`--volume-size`). The pattern is the subset of Kubernetes' quantity syntax the config accepts.
 */
export const QUANTITY_PATTERN = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

const SUFFIX_FACTOR: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/**
 * Bytes of a quantity, rounded up to a whole byte as Kubernetes' `Quantity.Value()` does (`1.5k` = 1500,
 * `500m` = 1); undefined when it is not a quantity. Above 2^53 the result is approximate (a double), which is
 * fine for a gauge.
 */
export function parseQuantityBytes(value: string): number | undefined {
  const match = QUANTITY_PATTERN.exec(value);
  if (!match) return undefined;
  const suffix = match[2] ?? '';
  const number = value.slice(0, value.length - suffix.length);
  const [whole = '0', fraction = ''] = number.split('.');
  // Integers multiplied, then one division each: exact whenever the true result is a whole number, so
  // `1.5Gi` or `3000m` are not rounded up by a stray 1e-16 (which 1.5 * 2^30 or 3000 * 0.001 could add).
  const factor = suffix === 'm' ? 1 : (SUFFIX_FACTOR[suffix] ?? 1);
  const divisor = suffix === 'm' ? 1000 : 1;
  const wholeBytes = (Number(whole) * factor) / divisor;
  const fractionBytes = fraction === '' ? 0 : (Number(fraction) * factor) / (10 ** fraction.length * divisor);
  return Math.ceil(wholeBytes + fractionBytes);
}
