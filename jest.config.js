/** Tests run TypeScript through ts-jest; ONNX Runtime itself runs in worker
 * threads built into dist/ (npm test builds first), outside jest's VM realm. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testTimeout: 60000,
};
