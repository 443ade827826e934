import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config';

describe('loadConfig', () => {
  test('defaults give a CPU service on 8080/50051 reading ./models', () => {
    const c = loadConfig({}, []);
    expect(c).toMatchObject({
      host: '0.0.0.0',
      port: 8080,
      grpcPort: 50051,
      modelsDir: path.resolve('models'),
      executionProviders: [{ name: 'cpu' }],
      providerFallback: true,
      ortWorkers: 1,
      logLevel: 'info',
    });
    expect(c.ortIntraOpThreads).toBeGreaterThanOrEqual(1);
  });

  test('reads the environment and lets flags override it', () => {
    const c = loadConfig({ PORT: '9000', BATCH_MAX_IMAGES: '16', LOG_LEVEL: 'warn' }, [
      '--port',
      '9100',
      '--batch-max-wait-ms=7',
      '--execution-providers',
      'cuda:1,cpu',
    ]);
    expect(c.port).toBe(9100);
    expect(c.batchMaxImages).toBe(16);
    expect(c.batchMaxWaitMs).toBe(7);
    expect(c.logLevel).toBe('warn');
    expect(c.executionProviders).toEqual([{ name: 'cuda', deviceId: 1 }, { name: 'cpu' }]);
  });

  test('reports every bad value in one error, naming the variable and the value', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig(
        {
          PORT: 'eighty',
          ORT_WORKERS: '0',
          PROVIDER_FALLBACK: 'maybe',
          EXECUTION_PROVIDERS: 'gpu',
        },
        ['--log-level', 'loud'],
      );
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.problems).toHaveLength(5);
    expect(error?.message).toContain('PORT="eighty": must be an integer');
    expect(error?.message).toContain('ORT_WORKERS="0": must be >= 1');
    expect(error?.message).toContain('PROVIDER_FALLBACK="maybe": must be true or false');
    expect(error?.message).toContain('EXECUTION_PROVIDERS="gpu": "gpu" is not a provider');
    expect(error?.message).toContain('flag --log-level="loud"');
  });

  test('unknown flags and flags without a value are errors', () => {
    expect(() => loadConfig({}, ['--prot', '1'])).toThrow(/unknown flag "--prot"/);
    expect(() => loadConfig({}, ['--port'])).toThrow(/flag --port needs a value/);
  });

  test('an empty variable counts as unset', () => {
    expect(loadConfig({ PORT: '' }, []).port).toBe(8080);
  });

  test('refuses a queue too small for the largest request it must accept', () => {
    expect(() => loadConfig({ QUEUE_MAX_IMAGES: '10', MAX_IMAGES_PER_REQUEST: '64' }, [])).toThrow(
      /QUEUE_MAX_IMAGES=10 must be >= MAX_IMAGES_PER_REQUEST = 64/,
    );
    const generation = { GENERATE_QUEUE_MAX_IMAGES: '100', MAX_GENERATE_COUNT: '64' };
    expect(() => loadConfig(generation, [])).toThrow(
      /GENERATE_QUEUE_MAX_IMAGES=100 must be >= 2 \* MAX_GENERATE_COUNT = 128/,
    );
  });

  test('gives generation an admission budget of its own, set by env or flag', () => {
    const c = loadConfig({}, []);
    expect(c.queueMaxImages).toBe(1024);
    expect(c.generateQueueMaxImages).toBe(256);
    // Generation no longer counts against QUEUE_MAX_IMAGES, so it may be below 2 * count.
    const small = loadConfig({ QUEUE_MAX_IMAGES: '64', GENERATE_QUEUE_MAX_IMAGES: '500' }, [
      '--generate-queue-max-images',
      '300',
    ]);
    expect(small.queueMaxImages).toBe(64);
    expect(small.generateQueueMaxImages).toBe(300);
  });

  test('the result is frozen, providers included', () => {
    const c = loadConfig({}, []);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.executionProviders)).toBe(true);
    expect(() => {
      (c as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  test('PROVIDER_FALLBACK accepts the usual spellings of true and false', () => {
    expect(loadConfig({ PROVIDER_FALLBACK: 'FALSE' }, []).providerFallback).toBe(false);
    expect(loadConfig({ PROVIDER_FALLBACK: '0' }, []).providerFallback).toBe(false);
    expect(loadConfig({ PROVIDER_FALLBACK: 'yes' }, []).providerFallback).toBe(true);
  });
});
