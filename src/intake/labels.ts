import { ServiceError } from '../errors';
import type { ClassInfo } from '../types';

/**
 * Class labels for generation. Accepted: a JSON integer that is one of the model's class ids
 * (0..num_classes-1), or a class name matched after trimming and ignoring case ("sneaker" is
 * Sneaker). Refused: non-integers (3.5 is never truncated), out-of-range ids - including
 * num_classes itself, the model's internal null class, which no request may select - and numeric
 * strings such as "7": a label is either a number or a name, so "10" cannot slip through a
 * coercion. The null class is not in `classes`, so it is unreachable by id and by name.
 */

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}`;
  const shown = JSON.stringify(value) ?? String(value);
  return shown.length > 64 ? `${shown.slice(0, 61)}...` : shown;
}

/** The label as given, for machine-readable details: primitives as-is, anything else described. */
function shownValue(value: unknown): unknown {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  if (typeof value === 'string') return value.slice(0, 64);
  return describe(value);
}

function invalidClass(value: unknown, classes: ClassInfo[], why: string): ServiceError {
  const ids = classes.map((c) => c.id);
  const range = ids.length ? `${Math.min(...ids)}..${Math.max(...ids)}` : '(none)';
  const list = classes.map((c) => `${c.id} ${c.name}`).join(', ');
  return new ServiceError(
    'invalid_class',
    `class ${describe(value)} is not valid (${why}); use an integer id in ${range} ` +
      `or a class name: ${list}`,
    { value: shownValue(value), classes },
  );
}

/**
 * Resolves a client's class label to a class id, or throws ServiceError('invalid_class') listing
 * every id and name.
 * @example resolveClass('sneaker', model.classes) // 7
 */
export function resolveClass(value: unknown, classes: ClassInfo[]): number {
  if (typeof value === 'bigint') {
    // gRPC int64 fields may arrive as bigint; only small exact values can be ids.
    if (value < BigInt(Number.MIN_SAFE_INTEGER) || value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalidClass(value, classes, 'out of range');
    }
    return resolveClass(Number(value), classes);
  }
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw invalidClass(value, classes, 'not an integer');
    const match = classes.find((c) => c.id === value);
    if (!match) throw invalidClass(value, classes, 'no class has this id');
    return match.id;
  }
  if (typeof value === 'string') {
    const wanted = asciiTrim(value);
    if (/^[+-]?\d+(\.\d*)?$/.test(wanted)) {
      throw invalidClass(value, classes, 'a numeric string; send ids as JSON numbers');
    }
    const lower = asciiLower(wanted);
    const match = wanted && classes.find((c) => asciiLower(c.name) === lower);
    if (!match) throw invalidClass(value, classes, 'no class has this name');
    return match.id;
  }
  throw invalidClass(value, classes, kindOf(value));
}

/**
 * Trimming and case folding touch ASCII only: Unicode folding maps look-alikes onto letters
 * (the Kelvin sign U+212A lower-cases to "k", so "Snea\u212Aer" would be class 7), and
 * String.trim() would drop no-break spaces and BOMs a client never meant as part of a name.
 */
const asciiTrim = (text: string) => text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
const asciiLower = (text: string) => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** What a JSON value is, with its article: "an object", "an array", "a boolean", "missing". */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
