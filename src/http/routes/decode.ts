import type { Request, Response } from 'express';
import { z } from 'zod';
import { checkLatentsFor, decodeLatents, imagesToFiles } from '../../api/decode';
import {
  DEFAULT_FORMAT,
  DEFAULT_SPACE,
  IMAGE_FORMATS,
  LATENT_SPACES,
  MEDIA_TYPES,
  formatOfMediaType,
} from '../../api/options';
import { ServiceError } from '../../errors';
import { checkLatentShape, parseLatentJson, parseNpy } from '../../intake';
import type { ModelHandle, Tensor } from '../../types';
import { mediaTypeOf, parseJson, readBody, requireMediaType } from '../body';
import { negotiate } from '../negotiate';
import { stateOf } from '../request-context';
import { parseOptions, parseWith } from '../validate';
import type { HttpDeps } from '../app';

const QuerySchema = z.strictObject({
  latents: z.enum(LATENT_SPACES).optional(),
  format: z.enum(IMAGE_FORMATS).optional(),
});

const JsonBodySchema = z.strictObject({ latents: z.unknown() }).refine((b) => b.latents != null, {
  message: 'needs "latents": {"shape": [...], "dtype": "float32"|"float16", "data": "<base64>"}',
});

const LATENT_JSON_FIELDS = ['shape', 'dtype', 'data'];

/** A latent object with a field beyond shape, dtype and data is refused, not read around. */
function refuseExtraLatentFields(latents: unknown): void {
  if (latents === null || typeof latents !== 'object' || Array.isArray(latents)) return;
  const extra = Object.keys(latents).filter((k) => !LATENT_JSON_FIELDS.includes(k));
  if (extra.length > 0) {
    throw new ServiceError(
      'invalid_latent',
      `latent JSON has unknown field(s) ${extra.join(', ')}; it takes exactly shape, dtype, data`,
      { field: 'latents', unknown: extra },
    );
  }
}

export const DECODE_BODY_TYPES = [
  'application/x-npy',
  'application/octet-stream',
  'application/json',
];

async function readLatents(req: Request, deps: HttpDeps, handle: ModelHandle): Promise<Tensor> {
  const type = mediaTypeOf(req);
  if (type !== '') requireMediaType(req, DECODE_BODY_TYPES);
  const body = await readBody(req, deps.config.maxBodyBytes, deps.bodyBudget);
  if (type === 'application/json') {
    const { latents } = parseWith(JsonBodySchema, parseJson(body), 'JSON body');
    refuseExtraLatentFields(latents);
    return parseLatentJson(latents);
  }
  const limits = { maxBatch: deps.config.maxImagesPerRequest };
  return parseNpy(body, (shape) => checkLatentShape(shape, handle.latentShape, limits));
}

/**
 * POST /v1/models/{model}/decode: latents -> images. One latent comes back as the image
 * itself (format by Accept, else ?format, else PNG); a batch, or Accept: application/json,
 * as JSON {format, images: [base64...]}.
 */
export function decodeRoute(deps: HttpDeps) {
  return async function decode(req: Request, res: Response): Promise<void> {
    const state = stateOf(res);
    const handle = deps.registry.get(String(req.params.model));
    state.model = handle.name;
    const query = parseOptions(QuerySchema, req.query, 'query');
    const space = query.latents ?? DEFAULT_SPACE;
    const latents = checkLatentsFor(
      handle,
      await readLatents(req, deps, handle),
      space,
      deps.config,
    );
    const count = latents.shape[0];
    state.images = count;

    const preferred = MEDIA_TYPES[query.format ?? DEFAULT_FORMAT];
    const others = Object.values(MEDIA_TYPES).filter((t) => t !== preferred);
    const offered = count === 1 ? [preferred, 'application/json', ...others] : ['application/json'];
    const reply = negotiate(req, offered);
    const format = formatOfMediaType(reply) ?? query.format ?? DEFAULT_FORMAT;

    const images = await decodeLatents(handle, latents, space, state.signal);
    const files = await imagesToFiles(handle, images, format);
    if (reply === 'application/json') {
      res.json({ format, images: files.map((f) => f.toString('base64')) });
      return;
    }
    res.type(reply).send(files[0]);
  };
}
