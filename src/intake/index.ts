/**
 * Intake: bytes from clients -> validated tensors and labels, and model output -> image files.
 * Pure functions with no transport knowledge; every transport calls the same ones. They throw
 * only ServiceError with catalog codes. Policies: docs/input-policy.md.
 */
export { decodeBase64, encodeBase64, type DecodedBase64, type DecodeBase64Options } from './base64';
export { encodeImage, type EncodeImageOptions } from './encode-image';
export { decodeFloat16, encodeFloat16, floatToHalfBits, halfBitsToFloat } from './float16';
export { DEFAULT_MAX_ASPECT_RATIO, DEFAULT_MIN_SIDE } from './geometry';
export { prepareImage, stackImages, type PrepareImageOptions, type WarnLogger } from './image';
export { resolveClass } from './labels';
export {
  checkLatent,
  checkLatentShape,
  latentToJson,
  parseLatentJson,
  type CheckLatentOptions,
  type LatentJson,
} from './latents';
export { parseNpy, writeNpy, type NpyDtype } from './npy';
export { lumaBt601, rgbToTensor, tensorToPixels } from './pixels';
export { SUPPORTED_IMAGE_FORMATS, sniffImageFormat, type SupportedImageFormat } from './sniff';
