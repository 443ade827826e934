import * as grpc from '@grpc/grpc-js';
import { checkLatentsFor, decodeLatents, imagesToFiles } from '../api/decode';
import { checkImageCount, encodeImages } from '../api/encode';
import { describeModel } from '../api/model-info';
import {
  DEFAULT_FORMAT,
  DEFAULT_RESIZE,
  DEFAULT_SPACE,
  LATENT_DTYPES,
  MEDIA_TYPES,
  pickOption,
} from '../api/options';
import { ServiceError } from '../errors';
import type { ModelHandle } from '../types';
import { unary } from './call-context';
import { holdPayload, modelFor, type GrpcDeps } from './deps';
import {
  formatFromProto,
  resizeFromProto,
  samplerToProto,
  spaceFromProto,
  spaceToProto,
} from './enums';
import { generateHandler } from './generate';
import { tensorFromMessage, tensorToMessage, type TensorMessage } from './tensor';

interface EncodeRequest {
  model?: string;
  images?: Buffer[];
  resize?: string;
  latentSpace?: string;
  dtype?: string;
}

interface DecodeRequest {
  model?: string;
  latents?: TensorMessage;
  latentSpace?: string;
  format?: string;
}

/** ModelInfo in proto shape. */
export function modelInfoMessage(handle: ModelHandle) {
  const info = describeModel(handle);
  const [lo, hi] = info.sampler.cfgInterval;
  return {
    name: info.name,
    description: info.description,
    image: info.image,
    latentShape: info.latent.shape,
    latentMean: info.latent.mean,
    latentScale: info.latent.scale,
    classes: info.classes,
    sampler: {
      sampler: samplerToProto(info.sampler.sampler),
      steps: info.sampler.steps,
      cfgScale: info.sampler.cfgScale,
      cfgInterval: { lo, hi },
      shift: info.sampler.shift,
    },
    providers: info.providers,
  };
}

/** The service implementation for dmvae.v1.Dmvae. */
export function dmvaeHandlers(deps: GrpcDeps): grpc.UntypedServiceImplementation {
  const { config } = deps;
  return {
    Encode: unary<EncodeRequest, unknown>('Encode', deps, async (request, state) => {
      const handle = modelFor(deps, request.model, state);
      const images = request.images ?? [];
      state.images = images.length;
      checkImageCount(images.length, config);
      const dtype = pickOption('dtype', request.dtype, LATENT_DTYPES, 'float32');
      const space = spaceFromProto(request.latentSpace) ?? DEFAULT_SPACE;
      const resize = resizeFromProto(request.resize) ?? DEFAULT_RESIZE;
      const release = holdPayload(
        deps,
        images.reduce((sum, image) => sum + image.length, 0),
      );
      try {
        const outcome = await encodeImages(
          handle,
          images,
          { resize, space },
          config,
          state.signal,
          state.log,
        );
        return {
          latents: tensorToMessage(outcome.latents, dtype),
          latentSpace: spaceToProto(space),
          images: outcome.images,
        };
      } finally {
        release();
      }
    }),

    Decode: unary<DecodeRequest, unknown>('Decode', deps, async (request, state) => {
      const handle = modelFor(deps, request.model, state);
      const latents = tensorFromMessage(request.latents);
      state.images = latents.shape.length === 3 ? 1 : latents.shape[0];
      const space = spaceFromProto(request.latentSpace) ?? DEFAULT_SPACE;
      const format = formatFromProto(request.format) ?? DEFAULT_FORMAT;
      const checked = checkLatentsFor(handle, latents, space, config);
      const release = holdPayload(deps, checked.data.byteLength);
      try {
        const images = await decodeLatents(handle, checked, space, state.signal);
        const files = await imagesToFiles(handle, images, format);
        return { images: files, mediaType: MEDIA_TYPES[format] };
      } finally {
        release();
      }
    }),

    Generate: generateHandler(deps),

    ListModels: unary<unknown, unknown>('ListModels', deps, async () => {
      if (!deps.registry.isReady()) throw new ServiceError('not_ready', 'Models are still loading');
      return { models: deps.registry.list().map(modelInfoMessage) };
    }),

    GetModel: unary<{ model?: string }, unknown>('GetModel', deps, async (request, state) =>
      modelInfoMessage(modelFor(deps, request.model, state)),
    ),
  };
}
