// Node peer of the agegender benchmarks (run by bench/faceapi.sh):
// face-api's age/gender net (@vladmandic/face-api 1.7.15, its weights from
// the npm package) on the UTKFace test split, the crops fed straight to the
// net (they are faces already: no detector), on the tfjs wasm backend with
// one thread, batch 1.
//
// Usage, from bench/faceapi with its npm packages installed:
//
//	node peer.js [--images DIR] [--limit N] [--dump FILE --dump-n N]
//
// DIR is the UTKFace images folder (default ../../../shared/data/utkface/images
// from this folder). It prints n, gender accuracy, age-group exact and 1-off
// accuracy on the 8 Adience groups, MAE in years, CS@5 and ms per face, then a
// markdown row for BENCHMARKS.md. --dump writes the raw outputs (age in years,
// P(male), P(female)) of the first N test faces as JSON, for the Go importer's
// test (interop/faceapi).
//
// The rules below replicate the Go side exactly:
//   - names: data/utkface ParseName (age_gender_race_datetime.jpg.chip.jpg or
//     .jpg; age 0..120, gender 0 male / 1 female, race 0..4, datetime digits);
//     malformed names are skipped and counted;
//   - split: data/utkface SplitOf (FNV-1a 64 of the base name % 100 >= 90 is
//     the test split);
//   - groups: data.AgeGroupOf (nearest Adience group, ties to the older one),
//     for the true age and for the predicted age rounded to whole years
//     (negative predictions count as 0).
const fs = require('fs');
const path = require('path');
const jpeg = require('jpeg-js');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

function args() {
  const a = {
    images: path.join(__dirname, '../../../shared/data/utkface/images'),
    limit: 0, dump: '', dumpN: 8,
  };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    const next = () => {
      if (i + 1 >= v.length) throw new Error(`${v[i]} needs a value`);
      return v[++i];
    };
    switch (v[i]) {
      case '--images': a.images = next(); break;
      case '--limit': a.limit = Number(next()); break;
      case '--dump': a.dump = next(); break;
      case '--dump-n': a.dumpN = Number(next()); break;
      default: throw new Error(`unknown argument ${v[i]} (want --images DIR, --limit N, --dump FILE, --dump-n N)`);
    }
  }
  return a;
}

const allDigits = (s) => s.length > 0 && /^[0-9]+$/.test(s);

// parseName is data/utkface.ParseName: {age, gender} or null.
function parseName(base) {
  let stem;
  if (base.endsWith('.jpg.chip.jpg')) stem = base.slice(0, -'.jpg.chip.jpg'.length);
  else if (base.endsWith('.jpg')) stem = base.slice(0, -'.jpg'.length);
  else return null;
  const f = stem.split('_');
  if (f.length !== 4) return null;
  if (!allDigits(f[0])) return null;
  const age = Number(f[0]);
  if (!(age <= 120)) return null;
  if (f[1] !== '0' && f[1] !== '1') return null;
  if (f[2].length !== 1 || f[2] < '0' || f[2] > '4') return null;
  if (!allDigits(f[3])) return null;
  return { age, gender: Number(f[1]) };
}

// splitOf is data/utkface.SplitOf: 0 train, 1 validation, 2 test.
function splitOf(base) {
  const mask = (1n << 64n) - 1n;
  let h = 14695981039346656037n;
  for (const b of Buffer.from(base, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 1099511628211n) & mask;
  }
  const m = Number(h % 100n);
  if (m < 80) return 0;
  if (m < 90) return 1;
  return 2;
}

// The Adience groups, as data.ageBounds.
const bounds = [[0, 2], [4, 6], [8, 12], [15, 20], [25, 32], [38, 43], [48, 53], [60, 100]];

// ageGroupOf is data.AgeGroupOf for age >= 0.
function ageGroupOf(age) {
  for (let g = 0; g < bounds.length; g++) {
    const [lo, hi] = bounds[g];
    if (age <= hi || g === bounds.length - 1) {
      if (age >= lo || g === 0) return g;
      if (age - bounds[g - 1][1] < lo - age) return g - 1;
      return g;
    }
  }
  return bounds.length - 1;
}

async function main() {
  const a = args();
  if (a.dump) fs.writeFileSync(a.dump, ''); // fail now, not after the run, if it cannot be written
  // One thread: the plain SIMD build, not the threaded one.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setWasmPaths(path.join(__dirname, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/'));
  await tf.setBackend('wasm');
  await tf.ready();
  const modelDir = path.join(__dirname, 'node_modules/@vladmandic/face-api/model');
  await faceapi.nets.ageGenderNet.loadFromDisk(modelDir);

  const names = fs.readdirSync(a.images, { withFileTypes: true })
    .filter((e) => !e.isDirectory()).map((e) => e.name).sort();
  let skipped = 0;
  const test = [];
  for (const n of names) {
    const s = parseName(n);
    if (!s) { skipped++; continue; }
    if (splitOf(n) === 2) test.push({ name: n, ...s });
  }
  if (a.limit > 0) test.length = Math.min(test.length, a.limit);

  // Warm up: the first calls compile and allocate.
  const warm = tf.zeros([200, 200, 3], 'int32');
  for (let i = 0; i < 3; i++) await faceapi.nets.ageGenderNet.predictAgeAndGender(warm);
  warm.dispose();

  let gender = 0, exact = 0, oneOff = 0, absErr = 0, cs5 = 0, negative = 0;
  const ms = [], cpu = [];
  const dump = [];
  for (const s of test) {
    const img = jpeg.decode(fs.readFileSync(path.join(a.images, s.name)), { useTArray: true, formatAsRGBA: false });
    const x = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
    // As face-api runs it: pad to a square (UTKFace crops are square
    // already), bilinear resize to 112×112, subtract the mean RGB, /255.
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const out = faceapi.nets.ageGenderNet.forwardInput(await faceapi.toNetInput(x));
    const age = (await out.age.data())[0];
    const pg = await out.gender.data();
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    cpu.push((c1.user + c1.system) / 1e3);
    out.age.dispose(); out.gender.dispose(); x.dispose();
    ms.push(Number(t1 - t0) / 1e6);
    if (a.dump && dump.length < a.dumpN) dump.push({ name: s.name, age, male: pg[0], female: pg[1] });

    const predGender = pg[0] > 0.5 ? 0 : 1; // face-api: male when P(male) > 0.5
    if (predGender === s.gender) gender++;
    if (age < 0) negative++;
    const d = ageGroupOf(Math.round(Math.max(age, 0))) - ageGroupOf(s.age);
    if (d === 0) exact++;
    if (Math.abs(d) <= 1) oneOff++;
    const e = Math.abs(age - s.age);
    absErr += e;
    if (e <= 5) cs5++;
  }
  const n = test.length;
  if (n === 0) throw new Error(`no UTKFace test-split images in ${a.images}`);
  if (a.dump) fs.writeFileSync(a.dump, JSON.stringify({ model: '@vladmandic/face-api 1.7.15 age_gender_model', backend: 'tfjs 4.22.0 wasm', outputs: dump }, null, 1) + '\n');
  const median = (v) => v.slice().sort((p, q) => p - q)[Math.floor(v.length / 2)];
  const p50 = median(ms);
  const cpu50 = median(cpu);
  const mean = ms.reduce((p, q) => p + q, 0) / n;
  const pct = (k) => `${(100 * k / n).toFixed(2)} %`;
  console.log(`images: ${names.length} files, ${skipped} malformed names skipped, test split n = ${n}, negative age predictions ${negative}`);
  console.log(`gender ${pct(gender)}, age exact ${pct(exact)}, 1-off ${pct(oneOff)}, MAE ${(absErr / n).toFixed(2)} years, CS@5 ${pct(cs5)}, ms/face wall mean ${mean.toFixed(2)} p50 ${p50.toFixed(2)}, CPU p50 ${cpu50.toFixed(2)} (tfjs wasm, 1 thread, batch 1, resize included, JPEG decode not)`);
  console.log('| model | n | gender | age exact | age 1-off | MAE (years) | CS@5 | ms/face wall / CPU (p50) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  console.log(`| face-api 1.7.15 age/gender net (TinyXception, 112 px), tfjs 4.22.0 wasm 1 thread | ${n} | ${pct(gender)} | ${pct(exact)} | ${pct(oneOff)} | ${(absErr / n).toFixed(2)} | ${pct(cs5)} | ${p50.toFixed(2)} / ${cpu50.toFixed(2)} |`);
}

main().then(() => process.exit(0)).catch((e) => { console.error(e.message || e); process.exit(1); });
