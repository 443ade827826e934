import { ServiceError } from '../errors';

/**
 * Size checks made from the image header, before any pixel is decoded. Pixel count, minimum
 * side and aspect ratio do not change under EXIF rotation, so the stored size can be checked;
 * the numbers in messages are the upright (post-orientation) ones the client sees.
 */

/** Longer side / shorter side. 10000x1 is refused rather than cropped to a 1x1 sliver. */
export const DEFAULT_MAX_ASPECT_RATIO = 10;
/** 1: a 1x1 image is accepted and upscaled to a uniform picture of the model's size. */
export const DEFAULT_MIN_SIDE = 1;

export interface GeometryLimits {
  maxPixels: number;
  maxAspectRatio: number;
  minSide: number;
}

/** Refuses a pixel flood (413 image_too_large) from the header's claimed size. */
export function checkPixelCount(width: number, height: number, maxPixels: number): void {
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new ServiceError(
      'image_too_large',
      `image is ${width}x${height} = ${pixels} pixels; this service accepts at most ` +
        `${maxPixels} (MAX_IMAGE_PIXELS)`,
      { width, height, pixels, limit: maxPixels },
    );
  }
}

/** Refuses tiny or extremely elongated images (422 image_geometry). */
export function checkGeometry(width: number, height: number, limits: GeometryLimits): void {
  checkPixelCount(width, height, limits.maxPixels);
  const shorter = Math.min(width, height);
  const longer = Math.max(width, height);
  if (shorter < limits.minSide) {
    throw new ServiceError(
      'image_geometry',
      `image is ${width}x${height}; each side must be at least ${limits.minSide} pixel(s)`,
      { width, height, minSide: limits.minSide },
    );
  }
  const ratio = longer / shorter;
  if (ratio > limits.maxAspectRatio) {
    throw new ServiceError(
      'image_geometry',
      `image is ${width}x${height}, an aspect ratio of ${+ratio.toFixed(2)}:1; this service ` +
        `accepts at most ${limits.maxAspectRatio}:1 (longer side / shorter side)`,
      { width, height, aspectRatio: ratio, maxAspectRatio: limits.maxAspectRatio },
    );
  }
}
