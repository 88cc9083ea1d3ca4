// run_tfjs.js runs a TensorFlow.js graph model on the pure-JS CPU backend
// and writes its outputs, as the reference for the Go importer's tests.
//
//   node run_tfjs.js request.json
//
// request.json:
//   {"model": "/abs/path/model.json",
//    "inputs": {"input_1": {"shape": [2, 224, 224, 3], "file": "/abs/x.f32"}},
//    "outputs": ["gender_pred/Sigmoid", "age_pred/Softmax"],
//    "result": "/abs/out.json"}
//
// Input files hold little-endian float32 values in row-major order. The
// result file is JSON: {"outputs": {name: {"shape": [...], "data": [...]}}}.
//
// tfjs without tfjs-node has no file:// loader, so a tiny IOHandler reads
// model.json and its weight shards with fs.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

function fileHandler(modelPath) {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
      const dir = path.dirname(modelPath);
      const specs = [];
      const buffers = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

async function main() {
  if (process.argv.length !== 3) {
    console.error('usage: node run_tfjs.js request.json');
    process.exit(2);
  }
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  await tf.setBackend('cpu');
  const model = await tf.loadGraphModel(fileHandler(req.model));
  const feeds = {};
  for (const [name, spec] of Object.entries(req.inputs)) {
    const b = fs.readFileSync(spec.file);
    const data = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    feeds[name] = tf.tensor(data, spec.shape, 'float32');
  }
  let outs = model.execute(feeds, req.outputs);
  if (!Array.isArray(outs)) outs = [outs];
  const result = {backend: tf.getBackend(), version: tf.version.tfjs, outputs: {}};
  for (let i = 0; i < outs.length; i++) {
    result.outputs[req.outputs[i]] = {shape: outs[i].shape, data: Array.from(await outs[i].data())};
  }
  fs.writeFileSync(req.result, JSON.stringify(result));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
