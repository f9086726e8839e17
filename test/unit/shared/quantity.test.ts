import test from 'ava';
import fc from 'fast-check';
import { QUANTITY_PATTERN, parseQuantityBytes } from '../../../src/shared/quantity.js';

test('binary and decimal suffixes give the bytes Kubernetes means', (t) => {
  t.is(parseQuantityBytes('5Gi'), 5_368_709_120);
  t.is(parseQuantityBytes('500Mi'), 524_288_000);
  t.is(parseQuantityBytes('5Mi'), 5_242_880);
  t.is(parseQuantityBytes('1Ki'), 1024);
  t.is(parseQuantityBytes('2Ti'), 2 * 2 ** 40);
  t.is(parseQuantityBytes('10G'), 10_000_000_000);
  t.is(parseQuantityBytes('3M'), 3_000_000);
  t.is(parseQuantityBytes('7k'), 7000);
  t.is(parseQuantityBytes('1T'), 1e12);
  t.is(parseQuantityBytes('123'), 123);
  t.is(parseQuantityBytes('0'), 0);
});

test('fractions are exact where the bytes are whole, and rounded up to a whole byte otherwise (as Quantity.Value())', (t) => {
  t.is(parseQuantityBytes('1.5Gi'), 1_610_612_736);
  t.is(parseQuantityBytes('1.1Gi'), Math.ceil(1.1 * 2 ** 30));
  t.is(parseQuantityBytes('0.5Ki'), 512);
  t.is(parseQuantityBytes('1.5k'), 1500);
  t.is(parseQuantityBytes('1.25'), 2);
  t.is(parseQuantityBytes('3000m'), 3);
  t.is(parseQuantityBytes('500m'), 1);
  t.is(parseQuantityBytes('1001m'), 2);
});

test('anything that is not a quantity is refused', (t) => {
  for (const bad of ['', '5GB', '5gi', 'Gi', '-1Gi', '1 Gi', ' 5Gi', '5Gi ', '1e9', '.5Gi', '5.Gi', '0x10', '5Gi5', 'five']) {
    t.is(parseQuantityBytes(bad), undefined, JSON.stringify(bad));
  }
});

test('property: a whole number with a suffix is that number times the suffix\'s factor', (t) => {
  const factors: Array<[string, number]> = [['', 1], ['k', 1e3], ['M', 1e6], ['G', 1e9], ['Ki', 1024], ['Mi', 2 ** 20], ['Gi', 2 ** 30]];
  fc.assert(
    fc.property(fc.nat(1_000_000), fc.constantFrom(...factors), (amount, [suffix, factor]) => {
      const text = `${amount}${suffix}`;
      return QUANTITY_PATTERN.test(text) && parseQuantityBytes(text) === amount * factor;
    }),
  );
  t.pass();
});
