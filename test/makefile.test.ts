import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * `make test` must run jest and pytest both, whatever the first one gives, and fail if either
 * failed. The real Makefile runs in a scratch folder where npm, dpkg and python are stand-ins
 * that record their calls and exit as each case says.
 */

const MAKEFILE = path.resolve(__dirname, '..', 'Makefile');

function makeTest(nodeExit: number, pythonExit: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dmvae-make-'));
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, 'calls.log');
  fs.mkdirSync(bin);
  fs.mkdirSync(path.join(dir, 'training'));
  fs.copyFileSync(MAKEFILE, path.join(dir, 'Makefile'));
  for (const file of ['package.json', 'package-lock.json']) {
    fs.writeFileSync(path.join(dir, file), '');
  }
  const stub = (name: string, body: string) =>
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> ${log}\n${body}\n`, {
      mode: 0o755,
    });
  stub('npm', `[ "$1" = test ] && exit ${nodeExit}; exit 0`);
  stub('dpkg', 'exit 0');
  stub('python', `exit ${pythonExit}`);
  const run = spawnSync('make', ['--no-print-directory', 'test', `PYTHON=${bin}/python`], {
    cwd: dir,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, MAKEFLAGS: '' },
    encoding: 'utf8',
  });
  const calls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [];
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: run.status, calls, stderr: run.stderr };
}

describe('make test', () => {
  test.each([
    [1, 0, 'test-node'],
    [0, 1, 'test-python'],
    [1, 1, 'test-node test-python'],
  ])('with jest exiting %i and pytest %i runs both and fails naming %s', (node, py, named) => {
    const { status, calls, stderr } = makeTest(node, py);
    expect(calls).toContain('npm test');
    expect(calls).toContain('python -m pytest -q tests');
    expect(status).not.toBe(0);
    expect(stderr).toContain(`make test: failed: ${named}`);
  });

  test('passes when both suites pass', () => {
    const { status, calls } = makeTest(0, 0);
    expect(calls.filter((c) => !c.startsWith('dpkg '))).toEqual([
      'npm ci --no-audit --no-fund',
      'npm test',
      'python -m pytest -q tests',
    ]);
    expect(status).toBe(0);
  });
});
