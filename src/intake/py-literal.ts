/**
 * A parser for the small subset of Python literals found in .npy headers: dicts, tuples, lists,
 * quoted strings, integers, True/False/None. Parsed, never evaluated; anything else is refused
 * with its position.
 */

export type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

/** Arrays parsed from [...] rather than (...): .npy shapes must be tuples. */
const LISTS = new WeakSet<PyValue[]>();
export const isPyList = (value: PyValue): boolean => Array.isArray(value) && LISTS.has(value);

export class PyLiteralError extends Error {}

const MAX_DEPTH = 16;

export function parsePyLiteral(text: string): PyValue {
  let pos = 0;

  const fail = (what: string): never => {
    throw new PyLiteralError(`${what} at position ${pos} of the header`);
  };
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
  };
  const expect = (ch: string) => {
    skipSpace();
    if (text[pos] !== ch) fail(`expected '${ch}'`);
    pos++;
  };

  function parseString(): string {
    const quote = text[pos++];
    let out = '';
    while (pos < text.length && text[pos] !== quote) {
      if (text[pos] === '\\') fail('escape sequences are not supported');
      out += text[pos++];
    }
    if (pos >= text.length) fail('unterminated string');
    pos++;
    return out;
  }

  /** Items up to `close`; a trailing comma is allowed. Returns the items and whether any comma
   * was seen (so '(3)' is the int 3 but '(3,)' is a tuple). */
  function parseItems<T>(close: string, item: () => T): { items: T[]; comma: boolean } {
    const items: T[] = [];
    let comma = false;
    skipSpace();
    while (text[pos] !== close) {
      items.push(item());
      skipSpace();
      if (text[pos] === ',') {
        comma = true;
        pos++;
        skipSpace();
      } else if (text[pos] !== close) {
        fail(`expected ',' or '${close}'`);
      }
    }
    pos++;
    return { items, comma };
  }

  function parseValue(depth: number): PyValue {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    skipSpace();
    const ch = text[pos];
    if (ch === "'" || ch === '"') return parseString();
    if (ch === '{') {
      pos++;
      const dict: { [key: string]: PyValue } = {};
      parseItems('}', () => {
        skipSpace();
        if (text[pos] !== "'" && text[pos] !== '"') fail('dict keys must be strings');
        const key = parseString();
        if (Object.prototype.hasOwnProperty.call(dict, key)) fail(`duplicate key '${key}'`);
        expect(':');
        dict[key] = parseValue(depth + 1);
      });
      return dict;
    }
    if (ch === '(' || ch === '[') {
      pos++;
      const { items, comma } = parseItems(ch === '(' ? ')' : ']', () => parseValue(depth + 1));
      // '(5)' is just 5 in Python; '(5,)' and '()' are tuples.
      if (ch === '(' && items.length === 1 && !comma) return items[0];
      if (ch === '[') LISTS.add(items);
      return items;
    }
    // Python 3 has no leading zeros on integers ('007' is a syntax error).
    const word = /^(-?(?:0|[1-9]\d*)|True|False|None)/.exec(text.slice(pos, pos + 32));
    if (!word) return fail('unexpected character ' + JSON.stringify(ch ?? 'end of header'));
    pos += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    const n = Number(word[0]);
    if (!Number.isSafeInteger(n)) fail(`integer ${word[0]} is too large`);
    return n;
  }

  const value = parseValue(0);
  skipSpace();
  if (pos !== text.length) fail('unexpected text after the literal');
  return value;
}
