import * as grpc from '@grpc/grpc-js';
import { imagesToFiles } from '../api/decode';
import { resolveGenerateParams, type GenerateFields } from '../api/generate';
import { DEFAULT_FORMAT, MEDIA_TYPES } from '../api/options';
import { ServiceError } from '../errors';
import { startCall } from './call-context';
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

/** int64 decimal string -> number; values past 2^53 stay visibly out of range, never wrap. */
function int64(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

function fieldsOf(request: GenerateRequest): GenerateFields {
  if (request.class === undefined) {
    throw new ServiceError('invalid_class', 'class is required: set class_id or class_name');
  }
  const interval = request.cfgInterval;
  return {
    class: request.class === 'className' ? request.className : int64(request.classId),
    count: request.count,
    steps: request.steps,
    cfgScale: request.cfgScale,
    cfgInterval: interval ? [interval.lo ?? 0, interval.hi ?? 0] : undefined,
    sampler: samplerFromProto(request.sampler),
    shift: request.shift,
    seed: request.seed === undefined ? undefined : exactSeed(request.seed),
  };
}

// A uint64 seed above 2^53 - 1 would round silently as a double: keep it out of range instead.
function exactSeed(text: string): number {
  const big = BigInt(text);
  return big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(big);
}

/**
 * Generate (server streaming): a `progress` event per generator evaluation, then one
 * `result`; a failure ends the stream with the catalog status.
 */
export function generateHandler(
  deps: GrpcDeps,
): grpc.handleServerStreamingCall<GenerateRequest, unknown> {
  return function generate(call) {
    const ctx = startCall(call, 'Generate', deps);
    const { state } = ctx;
    const run = async () => {
      const request = call.request;
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
