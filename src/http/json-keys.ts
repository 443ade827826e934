/** What JSON.parse does not refuse but the API does. */
export interface JsonShapeProblem {
  /** The first key given twice in one object. */
  duplicateKey?: string;
  /** Set when objects and arrays nest deeper than allowed. */
  tooDeep?: true;
}

/**
 * Looks over `text`, which must already be valid JSON (it has passed JSON.parse). JSON.parse
 * keeps the last of duplicate keys silently; the API refuses them instead, as it refuses a
 * query parameter given twice. Deep nesting is refused too: no option nests, and code that
 * walks a value recursively (JSON.stringify in a message) overflows the stack on thousands of
 * levels. One pass, jumping from quote to quote, so a 16 MB body of base64 strings costs a few
 * milliseconds.
 */
export function jsonShapeProblem(text: string, maxDepth: number): JsonShapeProblem | undefined {
  // one entry per open container: the keys seen so far for an object, null for an array
  const open: ({ keys: Set<string>; wantKey: boolean } | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = closingQuote(text, i);
      const top = open[open.length - 1];
      if (top?.wantKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) return { duplicateKey: key };
        top.keys.add(key);
        top.wantKey = false;
      }
      i = end;
    } else if (c === BRACE_OPEN || c === BRACKET_OPEN) {
      if (open.length >= maxDepth) return { tooDeep: true };
      open.push(c === BRACE_OPEN ? { keys: new Set(), wantKey: true } : null);
    } else if (c === BRACE_CLOSE || c === BRACKET_CLOSE) {
      open.pop();
    } else if (c === COMMA) {
      const top = open[open.length - 1];
      if (top) top.wantKey = true;
    }
  }
  return undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const BRACE_OPEN = 0x7b;
const BRACE_CLOSE = 0x7d;
const BRACKET_OPEN = 0x5b;
const BRACKET_CLOSE = 0x5d;
const COMMA = 0x2c;

/** Index of the quote that ends the string opening at `start`: one not escaped. */
function closingQuote(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  for (;;) {
    let slashes = 0;
    while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}
