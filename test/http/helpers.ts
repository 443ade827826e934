import sharp from 'sharp';
import type { Response } from 'superagent';
import { createHttpApp } from '../../src/http/app';
import { writeNpy } from '../../src/intake';
import { createLifecycle } from '../../src/lifecycle';
import { RowBudget } from '../../src/inference/row-budget';
import { capturingLogger, fakeModel, fakeRegistry, testConfig } from './fake-model';

/** A grey PNG whose pixel (x, y) is f(x, y). */
export function greyPng(width: number, height: number, f: (x: number, y: number) => number) {
  const pixels = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) pixels[y * width + x] = f(x, y);
  return sharp(pixels, { raw: { width, height, channels: 1 } })
    .png()
    .toBuffer();
}

export function latentNpy(count: number, value = 0.25): Buffer {
  return writeNpy({ data: new Float32Array(count * 196).fill(value), shape: [count, 4, 7, 7] });
}

/** An express app over one fake model, with its log lines and call record. */
export function fakeApp(
  env: Record<string, string> = {},
  opts: Parameters<typeof fakeModel>[1] = {},
) {
  const { handle, calls } = fakeModel('fake', opts);
  const ready = { value: true };
  const { logger, lines } = capturingLogger();
  const config = testConfig(env);
  const lifecycle = createLifecycle();
  const registry = fakeRegistry([handle], ready);
  const bodyBudget = new RowBudget(config.bodyQueueMaxBytes, 'BODY_QUEUE_MAX_BYTES', 'body bytes');
  const app = createHttpApp({ registry, config, logger, lifecycle, bodyBudget });
  return { app, calls, lines, ready, config, handle, lifecycle, bodyBudget };
}

/** supertest's parser for binary bodies (images, .npy). */
export function binaryParser(res: Response, done: (err: Error | null, body: unknown) => void) {
  const stream = res as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => done(null, Buffer.concat(chunks)));
}
