import fs from 'node:fs';
import { ERROR_CATALOG } from '../../src/errors';
import { OPENAPI_PATH } from '../../src/http/app';
import { fakeApp } from './helpers';

/** openapi.yaml must describe exactly what the app serves: no route missing, none invented. */
describe('openapi.yaml against the app', () => {
  const text = fs.readFileSync(OPENAPI_PATH, 'utf8');
  const lines = text.split('\n');

  /** "METHOD /path" for every operation under `paths:` (2-space path keys, 4-space methods). */
  function documentedOperations(): string[] {
    const start = lines.indexOf('paths:');
    const end = lines.findIndex((l, i) => i > start && /^\S/.test(l));
    const ops: string[] = [];
    let path = '';
    for (const line of lines.slice(start + 1, end)) {
      const p = /^ {2}(\/\S*):$/.exec(line);
      if (p) path = p[1];
      const m = /^ {4}(get|post|put|patch|delete):$/.exec(line);
      if (m) ops.push(`${m[1].toUpperCase()} ${path}`);
    }
    return ops.sort();
  }

  function servedOperations(): string[] {
    const { app } = fakeApp();
    const stack = (app as unknown as { router: { stack: any[] } }).router.stack;
    return stack
      .filter((layer) => layer.route)
      .flatMap((layer) =>
        Object.keys(layer.route.methods)
          .filter((m) => m !== '_all')
          .map((m) => `${m.toUpperCase()} ${layer.route.path.replace(/:(\w+)/g, '{$1}')}`),
      )
      .sort();
  }

  it('lists every route and method the app serves, and no other', () => {
    expect(documentedOperations()).toEqual(servedOperations());
    expect(servedOperations()).toHaveLength(8);
  });

  it('lists exactly the error codes of the catalog', () => {
    const start = lines.findIndex((l) => /^ {8}code:$/.test(l));
    const codes: string[] = [];
    for (const line of lines.slice(start + 3)) {
      const m = /^ {12}- (\w+)$/.exec(line);
      if (!m) break;
      codes.push(m[1]);
    }
    expect(codes.sort()).toEqual(Object.keys(ERROR_CATALOG).sort());
  });
});
