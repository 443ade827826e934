import path from 'node:path';

/**
 * The shared failure cases (../shared/cases beside the checkout, as every developer and CI
 * gets them), or CASES_DIR. Tests fail, never skip, when the folder is missing: a silently
 * skipped case suite would let regressions land.
 */
export const CASES_DIR =
  process.env.CASES_DIR ?? path.resolve(__dirname, '..', '..', 'shared', 'cases');
