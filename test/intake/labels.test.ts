import { resolveClass } from '../../src/intake';
import { caseBytes, describeCases, FMNIST_CLASSES, manifest, rejection } from './helpers';

/** BC-21: class labels are ids 0..9 or names; the null class (10) is never reachable. */

const LIST =
  '0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot';

describeCases('generate requests from the shared cases (BC-21)', () => {
  const entries = manifest().filter((e) => e.kind === 'generate-request');

  test.each(entries.map((e) => [e.file, e] as const))('%s', async (_file, entry) => {
    const value = JSON.parse(caseBytes(entry.file).toString('utf8')).class;
    if (entry.expected === 'accept') {
      expect(resolveClass(value, FMNIST_CLASSES)).toBe(7); // both accepted cases are Sneaker
      return;
    }
    const err = await rejection(() => resolveClass(value, FMNIST_CLASSES));
    expect([err.code, err.httpStatus]).toEqual(['invalid_class', 400]);
    expect(err.message).toContain(`use an integer id in 0..9 or a class name: ${LIST}`);
    expect(err.details.classes).toEqual(FMNIST_CLASSES);
  });
});

describe('resolveClass', () => {
  const reason = async (value: unknown) =>
    (await rejection(() => resolveClass(value, FMNIST_CLASSES))).message;

  test('every id and every name (any case, trimmed) resolves', () => {
    for (const { id, name } of FMNIST_CLASSES) {
      expect(resolveClass(id, FMNIST_CLASSES)).toBe(id);
      expect(resolveClass(name, FMNIST_CLASSES)).toBe(id);
      expect(resolveClass(`  ${name.toUpperCase()}\t`, FMNIST_CLASSES)).toBe(id);
    }
    expect(resolveClass(7n, FMNIST_CLASSES)).toBe(7);
  });

  test('the null class and everything out of range is refused, by number or bigint', async () => {
    for (const v of [10, -1, 11, 1000, 2 ** 31, 2 ** 32 + 7, 2 ** 53, -0.5, 1e300]) {
      expect(await reason(v)).toMatch(/^class .* is not valid/);
    }
    expect(await reason(10)).toBe(
      `class 10 is not valid (no class has this id); use an integer id in 0..9 or a class name: ${LIST}`,
    );
    expect(await reason(10n)).toMatch(/^class 10 is not valid/);
    expect(await reason(2n ** 64n + 7n)).toMatch(/out of range/);
  });

  test('non-integers are never truncated', async () => {
    for (const v of [3.5, 6.999, NaN, Infinity]) expect(await reason(v)).toMatch(/not an integer/);
  });

  test('numeric strings are refused, in range or not (ids are JSON numbers)', async () => {
    for (const v of ['7', '10', ' 3 ', '-1', '+2', '3.5', '07']) {
      expect(await reason(v)).toMatch(/a numeric string; send ids as JSON numbers/);
    }
  });

  test('other types and unknown names list every id and name', async () => {
    for (const v of [null, undefined, true, {}, [7], '', 'sneakers', 'T-shirt', 'no-such-class']) {
      expect(await reason(v)).toContain(LIST);
    }
    expect(await reason({ id: 7 })).toMatch(/^class \{"id":7\} is not valid \(an object\)/);
    expect(await reason([7])).toMatch(/is not valid \(an array\)/);
    expect(await reason(true)).toMatch(/is not valid \(a boolean\)/);
  });

  test('look-alikes and Unicode spaces never match a name (only ASCII is folded or trimmed)', async () => {
    const lookAlikes = [
      'Snea\u212Aer', // Kelvin sign: lower-cases to an ASCII k
      'An\u212Ale boot',
      'Sne\u0430ker', // Cyrillic a
      '\u00a0Sneaker', // no-break space
      'Sneaker\ufeff', // byte-order mark
      'Sneaker\u2028', // line separator
      '\uff33neaker', // full-width S
    ];
    for (const v of lookAlikes) {
      expect([v, await reason(v)]).toEqual([v, expect.stringMatching(/no class has this name/)]);
    }
    const accented = [{ id: 0, name: 'Café' }];
    expect(resolveClass(' café\n', accented)).toBe(0);
  });

  test('a long string is shortened in the message and details', async () => {
    const err = await rejection(() => resolveClass('x'.repeat(10_000), FMNIST_CLASSES));
    expect(err.message.length).toBeLessThan(400);
    expect((err.details.value as string).length).toBe(64);
  });

  test('works for any class list, e.g. a 1000-class model whose null class is 1000', async () => {
    const classes = Array.from({ length: 1000 }, (_, id) => ({ id, name: `c${id}` }));
    expect(resolveClass(999, classes)).toBe(999);
    expect(resolveClass('C12', classes)).toBe(12);
    expect((await rejection(() => resolveClass(1000, classes))).code).toBe('invalid_class');
  });
});
