// Reference outputs of face-api's age/gender net for the Go importer's test
// (interop/faceapi/testdata/node.json), computed by face-api 1.7.15's own
// code on the tfjs wasm backend. Usage, from the repository root with the
// npm packages of bench/faceapi installed (bench/faceapi.sh installs them):
//
//	node bench/faceapi/reference.js IMAGES_DIR > interop/faceapi/testdata/node.json
//
// Cases:
//   - "synthetic112": a 112×112 float input (no resize), pixel
//     (y, x, c) = (((y*112 + x)*3 + c) * 37) % 256: checks the net alone,
//     with its 512 pooled features;
//   - "synthetic150x200": a 150×200 (height × width) int input, pixel
//     (y, x, c) = (y*7 + x*13 + c*101) % 256: checks the padding to a square
//     and the bilinear resize too;
//   - four UTKFace test-split crops, decoded by jpeg-js (Go's decoder
//     differs by a level here and there, so these are checked loosely).
const fs = require('fs');
const path = require('path');
const jpeg = require('jpeg-js');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const images = [
  '10_0_0_20170110220111082.jpg.chip.jpg',
  '10_0_0_20170110220235233.jpg.chip.jpg',
  '26_1_0_20170104021504132.jpg.chip.jpg',
  '61_0_0_20170104212151300.jpg.chip.jpg',
];

async function run(x, withPooled) {
  const net = faceapi.nets.ageGenderNet;
  const input = await faceapi.toNetInput(x);
  const out = net.forwardInput(input);
  const r = { age: (await out.age.data())[0] };
  const g = await out.gender.data();
  r.male = g[0]; r.female = g[1];
  out.age.dispose(); out.gender.dispose();
  if (withPooled) {
    const feats = net.faceFeatureExtractor.forwardInput(input);
    const pooled = tf.avgPool(feats, [7, 7], [2, 2], 'valid');
    r.pooled = Array.from(await pooled.data());
    feats.dispose(); pooled.dispose();
  }
  return r;
}

async function main() {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: node bench/faceapi/reference.js IMAGES_DIR');
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setWasmPaths(path.join(__dirname, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/'));
  await tf.setBackend('wasm');
  await tf.ready();
  await faceapi.nets.ageGenderNet.loadFromDisk(path.join(__dirname, 'node_modules/@vladmandic/face-api/model'));
  const cases = [];

  const a = new Float32Array(112 * 112 * 3);
  for (let i = 0; i < a.length; i++) a[i] = (i * 37) % 256;
  let x = tf.tensor3d(a, [112, 112, 3], 'float32');
  cases.push({ name: 'synthetic112', ...(await run(x, true)) });
  x.dispose();

  const [h, w] = [150, 200];
  const b = new Int32Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let c = 0; c < 3; c++) b[(y * w + xx) * 3 + c] = (y * 7 + xx * 13 + c * 101) % 256;
  x = tf.tensor3d(b, [h, w, 3], 'int32');
  cases.push({ name: 'synthetic150x200', ...(await run(x, false)) });
  x.dispose();

  for (const n of images) {
    const img = jpeg.decode(fs.readFileSync(path.join(dir, n)), { useTArray: true, formatAsRGBA: false });
    x = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
    cases.push({ name: n, ...(await run(x, false)) });
    x.dispose();
  }
  const meta = {
    model: '@vladmandic/face-api 1.7.15 age_gender_model',
    runtime: `tfjs ${tf.version.tfjs} wasm (1 thread), node ${process.version}`,
    generator: 'bench/faceapi/reference.js',
  };
  process.stdout.write(JSON.stringify({ ...meta, cases }, null, 1) + '\n');
}

main().then(() => process.exit(0)).catch((e) => { console.error(e.message || e); process.exit(1); });
