import fs from 'node:fs';
import { parse } from 'yaml';
import { ERROR_CATALOG } from '../../src/errors';
import { OPENAPI_PATH } from '../../src/http/app';
import { fakeApp } from './helpers';

/**
 * openapi.yaml must be a document tools can load (parsed here by a YAML parser, strictly), and
 * describe exactly what the app serves: no route missing, none invented.
 */
describe('openapi.yaml against the app', () => {
  const text = fs.readFileSync(OPENAPI_PATH, 'utf8');
  const doc = parse(text, { strict: true, uniqueKeys: true, prettyErrors: true });
  const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

  function documentedOperations(): string[] {
    return Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((key) => METHODS.includes(key))
          .map((method) => `${method.toUpperCase()} ${path}`),
      )
      .sort();
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

  it('is OpenAPI 3 and every $ref points at something in the document', () => {
    expect(doc.openapi).toMatch(/^3\./);
    const refs = [...text.matchAll(/\$ref: '#\/([^']+)'/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      const target = ref.split('/').reduce((node: any, key) => node?.[key], doc);
      expect([ref, target === undefined]).toEqual([ref, false]);
    }
  });

  it('lists every route and method the app serves, and no other', () => {
    expect(documentedOperations()).toEqual(servedOperations());
    expect(servedOperations()).toHaveLength(8);
  });

  it('lists exactly the error codes of the catalog', () => {
    const codes: string[] = doc.components.schemas.Problem.properties.code.enum;
    expect([...codes].sort()).toEqual(Object.keys(ERROR_CATALOG).sort());
  });
});
