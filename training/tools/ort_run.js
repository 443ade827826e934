#!/usr/bin/env node
// Runs one ONNX graph in onnxruntime-node on .npy inputs and writes .npy outputs.
// The export stage uses it to check ONNX Runtime against PyTorch when Python has no
// onnxruntime (Debian ships none).
//
//   node tools/ort_run.js <model.onnx> <out-dir> name=input.npy [name=input.npy ...]
//
// Writes <out-dir>/<output name>.npy for every graph output. float32 and int64 only.
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  // resolve from the repository's node_modules (training/ sits one level below the root)
  const root = path.resolve(__dirname, '..', '..');
  return require(require.resolve('onnxruntime-node', { paths: [root, process.cwd()] }));
}

const DTYPES = {
  '<f4': ['float32', Float32Array],
  '<i8': ['int64', BigInt64Array],
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1]
    .split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (!DTYPES[descr]) throw new Error(`${file}: dtype ${descr} not supported`);
  const [type, Ctor] = DTYPES[descr];
  const body = buf.subarray(start + headerLen);
  const aligned = new Uint8Array(body).buffer; // copy: typed arrays need an aligned offset
  return { type, shape, data: new Ctor(aligned, 0, body.length / Ctor.BYTES_PER_ELEMENT) };
}

function writeNpy(file, tensor) {
  const descr = { float32: '<f4', int64: '<i8' }[tensor.type];
  if (!descr) throw new Error(`output dtype ${tensor.type} not supported`);
  const dims = tensor.dims.join(', ') + (tensor.dims.length === 1 ? ',' : '');
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = header + ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), data]));
}

async function main() {
  const [model, outDir, ...pairs] = process.argv.slice(2);
  if (!model || !outDir || pairs.length === 0) {
    console.error('usage: node tools/ort_run.js <model.onnx> <out-dir> name=file.npy ...');
    process.exit(2);
  }
  const ort = loadOrt();
  const feeds = {};
  for (const pair of pairs) {
    const [name, file] = pair.split('=');
    const arr = readNpy(file);
    feeds[name] = new ort.Tensor(arr.type, arr.data, arr.shape);
  }
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
  const results = await session.run(feeds);
  fs.mkdirSync(outDir, { recursive: true });
  for (const [name, tensor] of Object.entries(results)) {
    writeNpy(path.join(outDir, `${name}.npy`), tensor);
  }
}

main().catch((err) => {
  console.error(`ort_run: ${err.message}`);
  process.exit(1);
});
