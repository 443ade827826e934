import type { Request, Response } from 'express';
import { z } from 'zod';
import { checkImageCount, encodeImages, withIndex } from '../../api/encode';
import {
  DEFAULT_DTYPE,
  DEFAULT_RESIZE,
  DEFAULT_SPACE,
  LATENT_DTYPES,
  LATENT_SPACES,
  RESIZE_POLICIES,
} from '../../api/options';
import { decodeBase64, latentToJson, writeNpy } from '../../intake';
import { mediaTypeOf, parseJson, parseMultipart, readBody, requireMediaType } from '../body';
import { negotiate } from '../negotiate';
import { stateOf } from '../request-context';
import { mergeOption, parseOptions, parseWith } from '../validate';
import type { HttpDeps } from '../app';

const OptionsSchema = z.strictObject({
  resize: z.enum(RESIZE_POLICIES).optional(),
  latents: z.enum(LATENT_SPACES).optional(),
  dtype: z.enum(LATENT_DTYPES).optional(),
});
type Options = z.output<typeof OptionsSchema>;

const JsonBodySchema = OptionsSchema.extend({
  images: z.array(z.string()).optional(),
  image: z.string().optional(),
}).refine((b) => (b.images === undefined) !== (b.image === undefined), {
  message: 'give exactly one of "images" (an array of base64 strings) or "image" (one string)',
});

export const ENCODE_BODY_TYPES = [
  'image/*',
  'application/octet-stream',
  'multipart/form-data',
  'application/json',
];

/** The images of a request and the options its body carried, whatever the body type. */
async function readImages(req: Request, res: Response, deps: HttpDeps) {
  const type = mediaTypeOf(req);
  if (type !== '') requireMediaType(req, ENCODE_BODY_TYPES);
  const body = await readBody(req, deps.config.maxBodyBytes, deps.bodyBudget);
  if (type === 'multipart/form-data') {
    const { files, fields } = await parseMultipart(req, res, body, {
      maxFiles: deps.config.maxImagesPerRequest,
      maxBytes: deps.config.maxBodyBytes,
      maxFields: 3,
    });
    return { files, options: parseOptions(OptionsSchema, fields, 'form fields') };
  }
  if (type === 'application/json') {
    const { images, image, ...options } = parseWith(JsonBodySchema, parseJson(body), 'JSON body');
    const strings = images ?? [image as string];
    checkImageCount(strings.length, deps.config);
    const files = strings.map((text, index) => {
      try {
        // A data URL must declare an image/* type (intake refuses others with 415).
        const field = strings.length > 1 ? `images[${index}]` : 'image';
        return decodeBase64(text, { allowDataUrl: true, field }).bytes;
      } catch (err) {
        throw withIndex(err, index, strings.length);
      }
    });
    return { files, options };
  }
  // A raw body is one image whatever its declared type: the bytes are sniffed later.
  return { files: [body], options: {} as Options };
}

/** POST /v1/models/{model}/encode: images -> latents (JSON or .npy by Accept). */
export function encodeRoute(deps: HttpDeps) {
  return async function encode(req: Request, res: Response): Promise<void> {
    const state = stateOf(res);
    const handle = deps.registry.get(String(req.params.model));
    state.model = handle.name;
    const reply = negotiate(req, ['application/json', 'application/x-npy'] as const);
    const query = parseOptions(OptionsSchema, req.query, 'query');
    const { files, options } = await readImages(req, res, deps);
    state.images = files.length;
    const resize = mergeOption('resize', query.resize, options.resize) ?? DEFAULT_RESIZE;
    const space = mergeOption('latents', query.latents, options.latents) ?? DEFAULT_SPACE;
    const dtype = mergeOption('dtype', query.dtype, options.dtype) ?? DEFAULT_DTYPE;

    const outcome = await encodeImages(
      handle,
      files,
      { resize, space },
      deps.config,
      state.signal,
      state.log,
    );
    if (reply === 'application/x-npy') {
      res.type('application/x-npy').send(writeNpy(outcome.latents, dtype));
      return;
    }
    res.json({
      model: handle.name,
      latentSpace: space,
      latents: latentToJson(outcome.latents, dtype),
      images: outcome.images,
    });
  };
}
