import type { Request, Response } from 'express';
import { z } from 'zod';
import { imagesToFiles } from '../../api/decode';
import { resolveGenerateParams } from '../../api/generate';
import { DEFAULT_FORMAT, IMAGE_FORMATS, SAMPLERS } from '../../api/options';
import { ServiceError, toServiceError } from '../../errors';
import { latentToJson } from '../../intake';
import type { GenerateParams, GenerateResult, ImageFormat, ModelHandle } from '../../types';
import { parseJson, readBody, requireMediaType } from '../body';
import { negotiate } from '../negotiate';
import { problemDocument } from '../problem';
import { stateOf } from '../request-context';
import { parseWith, refuseQuery } from '../validate';
import type { HttpDeps } from '../app';

// Types only here; ranges and limits are checked in api/generate so gRPC gets the same rules.
// `class` too: any value but an id or a name, or none at all, is invalid_class there.
const BodySchema = z.strictObject({
  class: z.unknown().optional(),
  count: z.number().optional(),
  steps: z.number().optional(),
  cfgScale: z.number().optional(),
  cfgInterval: z.tuple([z.number(), z.number()]).optional(),
  sampler: z.enum(SAMPLERS).optional(),
  shift: z.number().optional(),
  seed: z.number().optional(),
  format: z.enum(IMAGE_FORMATS).optional(),
  returnLatents: z.boolean().optional(),
});

/** The JSON reply: images, and every parameter the sampler really used. */
async function replyOf(
  handle: ModelHandle,
  params: GenerateParams,
  result: GenerateResult,
  format: ImageFormat,
  returnLatents: boolean,
) {
  const files = await imagesToFiles(handle, result.images, format);
  return {
    model: handle.name,
    format,
    images: files.map((f) => f.toString('base64')),
    class: params.classId,
    className: handle.classes[params.classId].name,
    count: params.count,
    steps: params.steps,
    sampler: params.method,
    cfgScale: params.cfgScale,
    cfgInterval: params.cfgInterval,
    shift: params.shift,
    seed: params.seed,
    ...(returnLatents ? { latents: latentToJson(result.latents, 'float32') } : {}),
  };
}

/**
 * POST /v1/models/{model}/generate: class-conditional samples. With Accept: text/event-stream
 * the reply is an SSE stream: `progress` per sampler step, then `result` (or `error`). The
 * stream opens with the first event, so refusals before any step (queue_full, shutting_down)
 * are ordinary problem+json replies with their own status.
 */
export function generateRoute(deps: HttpDeps) {
  return async function generate(req: Request, res: Response): Promise<void> {
    const state = stateOf(res);
    const handle = deps.registry.get(String(req.params.model));
    state.model = handle.name;
    refuseQuery(req, 'takes its parameters in the JSON body, not the query');
    const mode = negotiate(req, ['application/json', 'text/event-stream'] as const);
    requireMediaType(req, ['application/json']);
    const json = parseJson(await readBody(req, deps.config.maxBodyBytes, deps.bodyBudget));
    const body = parseWith(BodySchema, json, 'JSON body');
    const { format = DEFAULT_FORMAT, returnLatents = false, ...fields } = body;
    const params = resolveGenerateParams(handle, fields, deps.config);
    state.images = params.count;

    if (mode === 'application/json') {
      const result = await handle.generate(params, undefined, state.signal);
      res.json(await replyOf(handle, params, result, format, returnLatents));
      return;
    }
    let streaming = false;
    const send = (event: string, data: unknown) => {
      if (!streaming) {
        // From here on the status line is sent: failures become an `error` event.
        res.status(200);
        res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
        res.setHeader('Cache-Control', 'no-cache, no-transform');
        res.setHeader('X-Accel-Buffering', 'no');
        res.flushHeaders();
        streaming = true;
      }
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    try {
      const result = await handle.generate(params, (p) => send('progress', p), state.signal);
      send('result', await replyOf(handle, params, result, format, returnLatents));
    } catch (err) {
      if (!streaming) throw err; // nothing sent yet: the app's problem+json reply
      if (!(err instanceof ServiceError)) state.log.error({ err }, 'generate failed mid-stream');
      const problem = toServiceError(err);
      state.errorCode = problem.code;
      if (!state.clientGone) send('error', problemDocument(problem, req, state.id));
    }
    res.end();
  };
}
