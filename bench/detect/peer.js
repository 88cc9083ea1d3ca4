// Node peer of bench/detect (run by bench/detect.sh): @vladmandic/human
// 3.3.5 with its BlazeFace back model on the tfjs wasm backend, the same
// frames, decode (jpeg-js) included. Usage: node peer.js FRAMES_DIR RUNS,
// from a folder with the npm packages of bench/detect.sh installed.
const fs = require('fs');
const path = require('path');
const jpeg = require('jpeg-js');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const H = require(path.join(__dirname, 'node_modules/@vladmandic/human/dist/human.node-wasm.js'));
const http = require('http');
// tfjs in Node cannot fetch file:// URLs: serve the model folder locally.
function serve(dir) {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      const f = path.join(dir, path.basename(decodeURIComponent(req.url.split('?')[0])));
      fs.readFile(f, (err, data) => { if (err) { res.statusCode = 404; res.end(); } else { res.end(data); } });
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}
async function main() {
  const srv = await serve(process.env.MODELS || '/work/shared/models/tfjs');
  const [dir, runs] = [process.argv[2], Number(process.argv[3] || 10)];
  wasm.setWasmPaths(path.join(__dirname, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/'));
  const human = new H.Human({
    backend: 'wasm', modelBasePath: `http://127.0.0.1:${srv.address().port}/`,
    wasmPath: path.join(__dirname, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/'),
    face: { enabled: true, detector: { modelPath: 'blazeface-back.json', rotation: false, maxDetected: 10 }, mesh: { enabled: false }, iris: { enabled: false }, emotion: { enabled: false }, description: { enabled: false }, antispoof: { enabled: false }, liveness: { enabled: false } },
    body: { enabled: false }, hand: { enabled: false }, object: { enabled: false }, gesture: { enabled: false }, segmentation: { enabled: false }, filter: { enabled: false },
  });
  await human.load();
  await human.warmup();
  console.log('| detector | photo | p50 ms | p90 ms | decode p50 ms | faces |');
  for (const name of ['448x448', '1MP', '12MP']) {
    const buf = fs.readFileSync(path.join(dir, name + '.jpg'));
    const tot = [], dec = []; let faces = 0;
    for (let r = 0; r <= runs; r++) {
      const t0 = process.hrtime.bigint();
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024, maxResolutionInMP: 50 });
      const t1 = process.hrtime.bigint();
      const tensor = human.tf.tensor3d(img.data, [img.height, img.width, 3], 'int32').expandDims(0);
      const res = await human.detect(tensor);
      tensor.dispose();
      const t2 = process.hrtime.bigint();
      if (r === 0) continue;
      tot.push(Number(t2 - t0) / 1e6); dec.push(Number(t1 - t0) / 1e6); faces = res.face.length;
    }
    const p = (a, q) => a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * q / 100))];
    console.log(`| human 3.3.5 (wasm) | ${name} | ${p(tot, 50).toFixed(1)} | ${p(tot, 90).toFixed(1)} | ${p(dec, 50).toFixed(1)} | ${faces} |`);
  }
}
main().then(() => process.exit(0)).catch((e) => { console.error(e); process.exit(1); });
