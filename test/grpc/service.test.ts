import * as grpc from '@grpc/grpc-js';
import { capturingLogger, fakeModel, fakeRegistry, testConfig } from '../http/fake-model';
import { greyPng, latentNpy } from '../http/helpers';
import { parseNpy } from '../../src/intake';
import { call, collect, startGrpc } from './client';

describe('gRPC dmvae.v1.Dmvae over a fake model', () => {
  const fake = fakeModel('fake', { slowMs: 0 });
  const ready = { value: false };
  const { logger, lines } = capturingLogger();
  let g: Awaited<ReturnType<typeof startGrpc>>;
  let png: Buffer;

  beforeAll(async () => {
    const config = testConfig({ MAX_BODY_BYTES: '65536', MAX_IMAGES_PER_REQUEST: '4' });
    g = await startGrpc({ registry: fakeRegistry([fake.handle], ready), config, logger });
    png = await greyPng(28, 28, (x, y) => (x + y) * 4);
  });
  afterAll(() => g.close());

  it('reports health NOT_SERVING before the models are ready and SERVING after', async () => {
    const before = await call(g.health, 'check', { service: '' });
    expect(before.status).toBe('NOT_SERVING');
    const early = await call(g.client, 'ListModels', {}).catch((e) => e);
    ready.value = true;
    g.service.updateHealth();
    const after = await call(g.health, 'check', { service: 'dmvae.v1.Dmvae' });
    expect(after.status).toBe('SERVING');
    expect((await call(g.health, 'check', { service: '' })).status).toBe('SERVING');
    expect(early.code).toBe(grpc.status.UNAVAILABLE);
    expect(early.metadata.get('error-code')).toEqual(['not_ready']);
  });

  it('lists and describes models with sampler defaults and providers', async () => {
    const list = await call(g.client, 'ListModels', {});
    expect(list.models.map((m: any) => m.name)).toEqual(['fake']);
    const info = await call(g.client, 'GetModel', { model: 'fake' });
    expect(info).toMatchObject({
      name: 'fake',
      image: { height: 28, width: 28, channels: 1 },
      latentShape: [4, 7, 7],
      sampler: {
        sampler: 'SAMPLER_HEUN',
        steps: 4,
        cfgScale: 3,
        cfgInterval: { lo: 0, hi: 1 },
        shift: 2.5,
      },
      providers: [{ graph: 'encoder', requested: ['cpu'], actual: 'cpu' }],
    });
    expect(info.classes).toHaveLength(10);
  });

  it('maps ServiceError to its catalog status, message and error-code', async () => {
    const err = await call(g.client, 'GetModel', { model: 'nope' }).catch((e) => e);
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toContain('nope');
    expect(err.metadata.get('error-code')).toEqual(['model_not_found']);
  });

  it('encodes repeated image bytes into a float32 tensor with per-image info', async () => {
    const reply = await call(g.client, 'Encode', { model: 'fake', images: [png, png] });
    expect(reply.latents.shape).toEqual(['2', '4', '7', '7']);
    expect(reply.latents.dtype).toBe('float32');
    expect(reply.latents.data.length).toBe(2 * 196 * 4);
    expect(reply.images[0]).toMatchObject({
      sourceWidth: 28,
      sourceHeight: 28,
      sourceFormat: 'png',
      frames: 1,
    });
    const half = await call(g.client, 'Encode', {
      model: 'fake',
      images: [png],
      dtype: 'float16',
      latentSpace: 'LATENT_SPACE_NORMALIZED',
    });
    expect(half.latents.data.length).toBe(196 * 2);
    expect(half.latentSpace).toBe('LATENT_SPACE_NORMALIZED');
  });

  it('refuses bad images, bad dtypes and too many images with INVALID_ARGUMENT', async () => {
    const empty = await call(g.client, 'Encode', {
      model: 'fake',
      images: [Buffer.alloc(0)],
    }).catch((e) => e);
    expect(empty.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(empty.metadata.get('error-code')).toEqual(['empty_image']);
    const dtype = await call(g.client, 'Encode', {
      model: 'fake',
      images: [png],
      dtype: 'int8',
    }).catch((e) => e);
    expect(dtype.code).toBe(grpc.status.INVALID_ARGUMENT);
    const many = await call(g.client, 'Encode', {
      model: 'fake',
      images: [png, png, png, png, png],
    }).catch((e) => e);
    expect(many.metadata.get('error-code')).toEqual(['too_many_items']);
    const none = await call(g.client, 'Encode', { model: 'fake', images: [] }).catch((e) => e);
    expect(none.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('refuses a message over the configured receive size with RESOURCE_EXHAUSTED', async () => {
    const err = await call(g.client, 'Encode', {
      model: 'fake',
      images: [Buffer.alloc(70000)],
    }).catch((e) => e);
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('decodes a tensor to one image per latent in the requested format', async () => {
    const t = parseNpy(latentNpy(2, 0.1));
    const data = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const reply = await call(g.client, 'Decode', {
      model: 'fake',
      latents: { data, shape: [2, 4, 7, 7], dtype: 'float32' },
      format: 'IMAGE_FORMAT_JPEG',
    });
    expect(reply.mediaType).toBe('image/jpeg');
    expect(reply.images).toHaveLength(2);
    expect(reply.images[0].subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    const bad = await call(g.client, 'Decode', {
      model: 'fake',
      latents: { data, shape: [2, 4, 7, 8], dtype: 'float32' },
    }).catch((e) => e);
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/bytes|shape/);
    const f64 = await call(g.client, 'Decode', {
      model: 'fake',
      latents: { data, shape: [1, 4, 7, 7], dtype: 'float64' },
    }).catch((e) => e);
    expect(f64.metadata.get('error-code')).toEqual(['unsupported_dtype']);
  });

  it('streams progress then one result, echoing every parameter', async () => {
    const stream = g.client.Generate({
      model: 'fake',
      classId: '7',
      count: 2,
      seed: '9007199254740991',
      sampler: 'SAMPLER_EULER',
      steps: 3,
      returnLatents: true,
    });
    const { messages, error } = await collect(stream);
    expect(error).toBeUndefined();
    expect(messages.slice(0, 3).map((m) => m.progress.step)).toEqual([1, 2, 3]);
    const result = messages[3].result;
    expect(messages).toHaveLength(4);
    expect(result.params).toMatchObject({
      class: { id: 7, name: 'Sneaker' },
      count: 2,
      steps: 3,
      sampler: 'SAMPLER_EULER',
      seed: '9007199254740991',
      cfgScale: 3,
      shift: 2.5,
    });
    expect(result.images).toHaveLength(2);
    expect(result.latents.shape).toEqual(['2', '4', '7', '7']);
  });

  it('takes a class by name and gives identical bytes for the same seed', async () => {
    const req = { model: 'fake', className: 'SNEAKER', seed: '5' };
    const a = await collect(g.client.Generate(req));
    const b = await collect(g.client.Generate(req));
    const last = (r: any) => r.messages[r.messages.length - 1].result;
    expect(last(a).params.class.id).toBe(7);
    expect(last(b).images).toEqual(last(a).images);
  });

  it.each([
    [{ classId: '-1' }, 'invalid_class'],
    [{ classId: '10' }, 'invalid_class'],
    [{ classId: '2147483648' }, 'invalid_class'],
    [{ classId: '9223372036854775807' }, 'invalid_class'],
    [{ className: 'no such class' }, 'invalid_class'],
    [{}, 'invalid_class'],
    [{ classId: '1', count: 65 }, 'limit_exceeded'],
    [{ classId: '1', seed: '9007199254740992' }, 'invalid_request'],
    [{ classId: '1', cfgInterval: { lo: 0.9, hi: 0.1 } }, 'invalid_request'],
  ])('ends Generate %j with INVALID_ARGUMENT %s and no messages', async (fields, code) => {
    const { messages, error } = await collect(g.client.Generate({ model: 'fake', ...fields }));
    expect(messages).toEqual([]);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.metadata.get('error-code')).toEqual([code]);
  });

  it('refuses a seed past 2^53-1 naming the range and the exact value sent', async () => {
    const { messages, error } = await collect(
      g.client.Generate({ model: 'fake', classId: '1', seed: '18446744073709551615' }),
    );
    expect(messages).toEqual([]);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.details).toBe(
      'seed must be an integer in 0..9007199254740991; got 18446744073709551615',
    );
  });

  it('says what a class must be when the class oneof is unset', async () => {
    const { error } = await collect(g.client.Generate({ model: 'fake', seed: '1' }));
    expect(error?.metadata.get('error-code')).toEqual(['invalid_class']);
    expect(error?.details).toMatch(/^class is required: an integer id or a class name \(0 /);
  });

  it.each([
    ['Generate', { sampler: 99 }, 'sampler 99 is not a known value; use one of SAMPLER_EULER'],
    ['Generate', { format: 99 }, 'format 99 is not a known value; use one of IMAGE_FORMAT_PNG'],
    ['Encode', { resize: 7 }, 'resize 7 is not a known value; use one of RESIZE_POLICY_'],
    ['Decode', { latentSpace: 5 }, 'latent_space 5 is not a known value; use one of LATENT_'],
  ])('refuses an unknown enum number in %s %j with INVALID_ARGUMENT', async (rpc, field, text) => {
    const t = parseNpy(latentNpy(1, 0.1));
    const base = {
      Generate: { classId: '1', seed: '1' },
      Encode: { images: [png] },
      Decode: { latents: { data: Buffer.from(t.data.buffer), shape: [1, 4, 7, 7] } },
    }[rpc as 'Generate' | 'Encode' | 'Decode'];
    const request = { model: 'fake', ...base, ...field };
    const error =
      rpc === 'Generate'
        ? (await collect(g.client.Generate(request))).error
        : await call(g.client, rpc, request).catch((e) => e);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.metadata.get('error-code')).toEqual(['invalid_request']);
    expect(error?.details).toContain(text);
  });

  it('takes an empty cfg_interval as the default; a bound left out is 0', async () => {
    const last = (r: { messages: any[] }) => r.messages[r.messages.length - 1].result.params;
    const request = { model: 'fake', classId: '1', seed: '1', steps: 1 };
    const empty = await collect(g.client.Generate({ ...request, cfgInterval: {} }));
    expect(last(empty).cfgInterval).toEqual({ lo: 0, hi: 1 });
    const zeros = await collect(g.client.Generate({ ...request, cfgInterval: { lo: 0, hi: 0 } }));
    expect(last(zeros).cfgInterval).toEqual({ lo: 0, hi: 1 });
    const half = await collect(g.client.Generate({ ...request, cfgInterval: { hi: 0.5 } }));
    expect(last(half).cfgInterval).toEqual({ lo: 0, hi: 0.5 });
    const loOnly = await collect(g.client.Generate({ ...request, cfgInterval: { lo: 0.5 } }));
    expect(loOnly.error?.details).toBe('cfgInterval must have lo <= hi; got [0.5, 0]');
  });

  it('logs one line per call with the request id from metadata', async () => {
    const md = new grpc.Metadata();
    md.set('x-request-id', 'grpc-log-1');
    await call(g.client, 'GetModel', { model: 'fake' }, {}, md);
    const line = lines.find((l) => l.reqId === 'grpc-log-1' && l.msg === 'rpc');
    expect(line).toMatchObject({ rpc: 'GetModel', grpcStatus: 0, model: 'fake' });
  });
});

describe('gRPC Generate failing mid-stream', () => {
  it('sends the progress so far, then INTERNAL with no internals, exactly once', async () => {
    const fake = fakeModel('fake', { failGenerateAt: 3 });
    const { logger, lines } = capturingLogger();
    const g = await startGrpc({
      registry: fakeRegistry([fake.handle]),
      config: testConfig(),
      logger,
    });
    try {
      const { messages, error } = await collect(
        g.client.Generate({ model: 'fake', classId: '1', seed: '1' }),
      );
      expect(messages.map((m) => m.progress?.step)).toEqual([1, 2]);
      expect(error?.code).toBe(grpc.status.INTERNAL);
      expect(error?.details).toBe('Internal error');
      expect(lines.filter((l) => l.msg === 'rpc' && l.rpc === 'Generate')).toHaveLength(1);
      expect(lines.some((l) => l.msg === 'unhandled error')).toBe(true);
    } finally {
      await g.close();
    }
  });
});

describe('gRPC cancellation and deadlines', () => {
  const fake = fakeModel('fake', { slowMs: 100 });
  let g: Awaited<ReturnType<typeof startGrpc>>;
  beforeAll(async () => {
    g = await startGrpc({
      registry: fakeRegistry([fake.handle]),
      config: testConfig(),
      logger: capturingLogger().logger,
    });
  });
  afterAll(() => g.close());

  it('turns a passed deadline into an aborted signal and DEADLINE_EXCEEDED', async () => {
    const deadline = new Date(Date.now() + 250);
    const { error } = await collect(
      g.client.Generate({ model: 'fake', classId: '1', steps: 50 }, { deadline }),
    );
    expect(error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.calls.lastSignal?.aborted).toBe(true);
  });

  it('turns a client cancel into an aborted signal', async () => {
    const stream = g.client.Generate({ model: 'fake', classId: '1', steps: 50 });
    const done = collect(stream);
    await new Promise((r) => setTimeout(r, 250));
    stream.cancel();
    const { error } = await done;
    expect(error?.code).toBe(grpc.status.CANCELLED);
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.calls.lastSignal?.aborted).toBe(true);
  });
});

describe('gRPC errors that quote long client input', () => {
  const fake = fakeModel('fake', { slowMs: 0 });
  let g: Awaited<ReturnType<typeof startGrpc>>;
  beforeAll(async () => {
    const config = testConfig({ MAX_BODY_BYTES: String(4 * 1024 * 1024) });
    const { logger } = capturingLogger();
    g = await startGrpc({ registry: fakeRegistry([fake.handle]), config, logger });
  });
  afterAll(() => g.close());

  // A 200 KB name quoted whole made a trailer past the client's header limit: the call hung.
  it('answers a 200 KB model name or dtype at once, with the value shortened', async () => {
    const long = 'x'.repeat(200_000);
    const deadline = () => ({ deadline: Date.now() + 5000 });
    const missing = await call(g.client, 'GetModel', { model: long }, deadline()).catch((e) => e);
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
    expect(missing.details.length).toBeLessThan(2100);
    expect(missing.details).toMatch(/more characters\)/);
    const encode = { model: 'fake', images: [Buffer.from('x')], dtype: long };
    const badDtype = await call(g.client, 'Encode', encode, deadline()).catch((e) => e);
    expect(badDtype.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(badDtype.details.length).toBeLessThan(2100);
    expect((await call(g.client, 'ListModels', {}, deadline())).models).toHaveLength(1);
  });

  // Cut inside a surrogate pair, the message made grpc-js's encodeURI throw: the process died.
  it('shortens a long name of emoji on a character boundary, every RPC answering', async () => {
    const deadline = () => ({ deadline: Date.now() + 5000 });
    for (const model of ['x' + '\u{1F600}'.repeat(1200), '\u{1F600}'.repeat(1200)]) {
      const err = await call(g.client, 'GetModel', { model }, deadline()).catch((e) => e);
      expect(err.code).toBe(grpc.status.NOT_FOUND);
      expect(err.details.isWellFormed()).toBe(true);
      const stream = g.client.Generate({ model, classId: 1 }, deadline());
      const { error } = await collect(stream);
      expect(error?.code).toBe(grpc.status.NOT_FOUND);
    }
    expect((await call(g.client, 'ListModels', {}, deadline())).models).toHaveLength(1);
  });
});

describe('gRPC requests whose bytes are not a protobuf message', () => {
  const fake = fakeModel('fake', { slowMs: 0 });
  let g: Awaited<ReturnType<typeof startGrpc>>;
  beforeAll(async () => {
    const { logger } = capturingLogger();
    g = await startGrpc({ registry: fakeRegistry([fake.handle]), config: testConfig(), logger });
  });
  afterAll(() => g.close());

  const raw = (x: Buffer) => x;
  // a field of wire type 7 (there is none); a varint that never ends; JSON text
  const garbage = [
    Buffer.from([0x0a, 0x01, 0x61, 0x0f]),
    Buffer.alloc(12, 0xff),
    Buffer.from('{"model": "fake"}'),
  ];

  it.each(['GetModel', 'Encode', 'Decode', 'ListModels'])(
    '%s answers INVALID_ARGUMENT',
    async (rpc) => {
      for (const bytes of garbage) {
        const err = await new Promise<grpc.ServiceError>((resolve) =>
          g.client.makeUnaryRequest(`/dmvae.v1.Dmvae/${rpc}`, raw, raw, bytes, (e: any) =>
            resolve(e),
          ),
        );
        expect([rpc, err?.code]).toEqual([rpc, grpc.status.INVALID_ARGUMENT]);
        expect(err.details).toMatch(
          new RegExp(`not a valid dmvae.v1.Dmvae.${rpc} protobuf message`),
        );
        expect(err.metadata.get('error-code')).toEqual(['invalid_request']);
      }
    },
  );

  it('Generate with both members of the class oneof on the wire is INVALID_ARGUMENT', async () => {
    const both = Buffer.concat([
      Buffer.from([0x0a, 4, ...Buffer.from('fake')]), // model
      Buffer.from([0x10, 7]), // class_id 7
      Buffer.from([0x1a, 7, ...Buffer.from('Sneaker')]), // class_name
    ]);
    const stream = g.client.makeServerStreamRequest('/dmvae.v1.Dmvae/Generate', raw, raw, both);
    const { error } = await collect(stream);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/class_id and class_name are both set/);
  });

  it('Generate (a stream) answers INVALID_ARGUMENT before any message', async () => {
    const stream = g.client.makeServerStreamRequest(
      '/dmvae.v1.Dmvae/Generate',
      raw,
      raw,
      garbage[0],
    );
    const { messages, error } = await collect(stream);
    expect(messages).toEqual([]);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await call(g.client, 'GetModel', { model: 'fake' })).name).toBe('fake');
  });
});
