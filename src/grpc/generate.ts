import * as grpc from '@grpc/grpc-js';
import { imagesToFiles } from '../api/decode';
import { resolveGenerateParams, seedFromText, type GenerateFields } from '../api/generate';
import { DEFAULT_FORMAT, MEDIA_TYPES } from '../api/options';
import { ServiceError } from '../errors';
import { requestOf, startCall } from './call-context';
import { formatFromProto, samplerFromProto, samplerToProto } from './enums';
import { modelFor, type GrpcDeps } from './deps';
import { tensorToMessage } from './tensor';

interface GenerateRequest {
  model?: string;
  /** Which member of the `class` oneof is set (proto-loader `oneofs: true`). */
  class?: 'classId' | 'className';
  classId?: string;
  className?: string;
  count?: number;
  steps?: number;
  cfgScale?: number;
  cfgInterval?: { lo?: number; hi?: number };
  sampler?: string;
  shift?: number;
  seed?: string;
  format?: string;
  returnLatents?: boolean;
}

/**
 * The `class` oneof: a name, an int64 id as an exact bigint (never rounded), or unset. A
 * message carrying both members (a conforming encoder never writes that; protobuf would keep
 * the last on the wire, which the decoder does not tell us) is refused rather than guessed.
 */
function classOf(request: GenerateRequest): unknown {
  if (request.classId !== undefined && request.className !== undefined) {
    throw new ServiceError(
      'invalid_class',
      'class_id and class_name are both set; they are one oneof, so give one of them',
    );
  }
  if (request.class === 'className') return request.className;
  if (request.class === 'classId') return BigInt(request.classId ?? '0');
  return undefined;
}

/**
 * An Interval message -> [lo, hi], or undefined for "the model's default". proto3 does not send
 * zeros, so an empty Interval and {lo: 0, hi: 0} arrive alike: both mean the default (see the
 * proto). A half-set one keeps 0 for the bound left out.
 */
function intervalOf(interval: GenerateRequest['cfgInterval']): [number, number] | undefined {
  const lo = interval?.lo ?? 0;
  const hi = interval?.hi ?? 0;
  return lo === 0 && hi === 0 ? undefined : [lo, hi];
}

function fieldsOf(request: GenerateRequest): GenerateFields {
  return {
    class: classOf(request),
    count: request.count,
    steps: request.steps,
    cfgScale: request.cfgScale,
    cfgInterval: intervalOf(request.cfgInterval),
    sampler: samplerFromProto(request.sampler),
    shift: request.shift,
    seed: request.seed === undefined ? undefined : seedFromText(request.seed),
  };
}

/**
 * Generate (server streaming): a `progress` event per sampler step, then one
 * `result`; a failure ends the stream with the catalog status.
 */
export function generateHandler(
  deps: GrpcDeps,
): grpc.handleServerStreamingCall<GenerateRequest, unknown> {
  return function generate(call) {
    const ctx = startCall(call, 'Generate', deps);
    const { state } = ctx;
    const run = async () => {
      const request = requestOf(call, 'Generate');
      const handle = modelFor(deps, request.model, state);
      const params = resolveGenerateParams(handle, fieldsOf(request), deps.config);
      state.images = params.count;
      const format = formatFromProto(request.format) ?? DEFAULT_FORMAT;
      const result = await handle.generate(
        params,
        (p) => call.write({ progress: { step: p.step, totalSteps: p.totalSteps, t: p.t } }),
        state.signal,
      );
      const images = await imagesToFiles(handle, result.images, format);
      call.write({
        result: {
          images,
          mediaType: MEDIA_TYPES[format],
          params: {
            class: { id: params.classId, name: handle.classes[params.classId].name },
            count: params.count,
            steps: params.steps,
            sampler: samplerToProto(params.method),
            cfgScale: params.cfgScale,
            cfgInterval: { lo: params.cfgInterval[0], hi: params.cfgInterval[1] },
            shift: params.shift,
            seed: String(params.seed),
          },
          ...(request.returnLatents ? { latents: tensorToMessage(result.latents) } : {}),
        },
      });
    };
    run().then(
      () => call.end(ctx.finish().metadata),
      (err: unknown) => {
        // emit('error') sends the status and ends the stream; nothing is written after it.
        call.emit('error', ctx.finish(err));
      },
    );
  };
}
