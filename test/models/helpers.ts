import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config';
import { createLogger, type Logger } from '../../src/logger';

/** Shared by the model, inference and sampler tests: the shipped model, .npy files, configs. */

export const REPO = path.resolve(__dirname, '..', '..');

/** models/ of this repository; TEST_MODELS_DIR points elsewhere while a model is being made. */
export const MODELS_DIR = process.env.TEST_MODELS_DIR ?? path.join(REPO, 'models');

/** The first shipped model folder; fails loudly when the pipeline has not exported one. */
export function shippedModelDir(): string {
  const names = fs.existsSync(MODELS_DIR) ? fs.readdirSync(MODELS_DIR).sort() : [];
  const name = names.find((n) => fs.existsSync(path.join(MODELS_DIR, n, 'manifest.json')));
  if (!name) throw new Error(`no model folder with manifest.json under ${MODELS_DIR}`);
  return path.join(MODELS_DIR, name);
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ MODELS_DIR, LOG_LEVEL: 'silent', ORT_INTRA_OP_THREADS: '1', ...env }, []);
}

/** A logger whose JSON lines land in `lines`. */
export function captureLogger(level = 'debug'): {
  logger: Logger;
  lines: Record<string, unknown>[];
} {
  const lines: Record<string, unknown>[] = [];
  const destination = { write: (s: string) => void lines.push(JSON.parse(s)) };
  return { logger: createLogger({ level, destination }), lines };
}

export interface Npy {
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array;
}

/** Minimal reader for the little-endian C-order .npy files the exporter writes. */
export function readNpy(file: string): Npy {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file} is not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (fortran) throw new Error(`${file}: Fortran order not supported here`);
  const bytes = new Uint8Array(buf.subarray(start)).slice().buffer;
  const types: Record<string, (b: ArrayBuffer) => Npy['data']> = {
    '<f4': (b) => new Float32Array(b),
    '<f8': (b) => new Float64Array(b),
    '<i8': (b) => new BigInt64Array(b),
    '<i4': (b) => new Int32Array(b),
  };
  if (!descr || !types[descr]) throw new Error(`${file}: dtype ${descr} not supported here`);
  return { dtype: descr, shape, data: types[descr](bytes) };
}

/** Largest |a - b| and whether every element meets |a - b| <= atol + rtol |b|. */
export function compare(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 0) {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let maxAbs = 0;
  let ok = true;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    maxAbs = Math.max(maxAbs, d);
    if (!(d <= atol + rtol * Math.abs(b[i]))) ok = false;
  }
  return { maxAbs, ok };
}
