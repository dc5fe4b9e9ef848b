// Diffusion kernels (`./build.sh bench` runs this after bench/run.mjs, with MLPLAY_URL
// pointing at a static server for www/): training steps per second and sampling throughput
// (particles x steps per second) of the denoiser MLP, GPU and CPU paths in one run each:
//   1. native: the WGSL kernels on the machine's wgpu adapter (lavapipe in CI) beside the
//      CPU twin, through `cargo run --release --example diffusion_bench`;
//   2. browser: the same through the page's GPU context (SwiftShader in headless Chromium
//      under --enable-unsafe-webgpu) and the wasm CPU twin, via `benchDiffusion`; and the
//      time of one sampler step for 10k particles against one frame at 60 fps (16.7 ms);
//   3. the PyTorch peer bench/diffusion_peer.py (same MLP, batch, Adam and sampler) on this
//      machine's CPU, from target/bench-venv (benches/requirements.txt, installed when missing).
// DIFFUSION_NATIVE=0 / DIFFUSION_PEER=0 skip parts 1 / 3; DIFFUSION_PY names another Python
// with torch. Results: bench-out/diffusion.json. BENCH_STRICT=1 makes a missed target exit 1.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { launchBrowser, pageUrl } from "../tests/e2e/browser.mjs";
import { REPO_ROOT, machine, peerPython, table } from "./common.mjs";

const log = (msg) => console.log(`    ${msg}`);
const info = machine();
const OUT = path.join(REPO_ROOT, "bench-out");
const HIDDEN = Number(process.env.DIFFUSION_HIDDEN || 64);
const BATCH = 256;
const TRAIN_STEPS = 30;
const PARTICLES = 10_000;
const SAMPLE_STEPS = 10;
const CPU_PARTICLES = 1000;
const FRAME_MS = 1000 / 60;
mkdirSync(OUT, { recursive: true });

// ---- 1. native (lavapipe) --------------------------------------------------------------------
let native = null;
if (process.env.DIFFUSION_NATIVE !== "0") {
  log("native: cargo run --release --features gpu --example diffusion_bench");
  const r = spawnSync(
    "cargo",
    [
      ...["run", "--quiet", "--release", "--features", "gpu", "--example", "diffusion_bench", "--"],
      ...["--hidden", `${HIDDEN},128`, "--batch", String(BATCH)],
      ...["--train-steps", String(TRAIN_STEPS), "--cpu-train-steps", String(TRAIN_STEPS)],
      ...["--particles", String(PARTICLES), "--sample-steps", String(SAMPLE_STEPS)],
      ...["--cpu-particles", String(CPU_PARTICLES), "--out", OUT],
    ],
    { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20 },
  );
  process.stdout.write(r.stdout || "");
  if (r.status === 0) native = JSON.parse(readFileSync(path.join(OUT, "diffusion-gpu.json"), "utf8"));
  else log(`native benchmark failed (exit ${r.status})`);
}

// ---- 2. browser (SwiftShader) ----------------------------------------------------------------
const browser = await launchBrowser({ webgpu: true });
const page = await (await browser.newContext()).newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(e.message));
await page.goto(pageUrl("embed.html?w=ppo-clip"), { waitUntil: "load" });
const chromium = browser.version();
const inBrowser = [];
for (const [hidden, particles] of [
  [HIDDEN, PARTICLES],
  [HIDDEN, 100_000],
]) {
  log(`browser: H = ${hidden}, B = ${BATCH}, ${particles} particles x ${SAMPLE_STEPS} steps`);
  const r = await page.evaluate(
    async (a) => {
      const m = await import(new URL("pkg-bench/mlplay.js", location.href).href);
      await m.default(); // its own instance: the benchmarks module, beside the page's
      try {
        return JSON.parse(await m.benchDiffusion(a.h, a.b, a.steps, a.steps, a.n, a.k, a.cpuN));
      } catch (e) {
        return { error: String(e.message || e) };
      }
    },
    { h: hidden, b: BATCH, steps: TRAIN_STEPS, n: particles, k: SAMPLE_STEPS, cpuN: CPU_PARTICLES },
  );
  inBrowser.push(r);
}
await browser.close();

// ---- 3. the PyTorch peer on the CPU ----------------------------------------------------------
let peer = null;
if (process.env.DIFFUSION_PEER !== "0") {
  const py = peerPython(process.env.DIFFUSION_PY, "torch", log);
  log("peer: bench/diffusion_peer.py --device cpu");
  const out = execFileSync(
    py,
    [
      path.join(REPO_ROOT, "bench", "diffusion_peer.py"),
      ...["--device", "cpu", "--hidden", `${HIDDEN},128`, "--batch", String(BATCH)],
      ...["--train-steps", String(TRAIN_STEPS), "--particles", String(PARTICLES)],
      ...["--sample-steps", String(SAMPLE_STEPS)],
    ],
    { encoding: "utf8" },
  );
  peer = out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

// ---- report ----------------------------------------------------------------------------------
const f1 = (x) => (x === undefined || x === null ? "" : Number(x).toFixed(1));
const e2 = (x) => (x === undefined || x === null ? "" : Number(x).toExponential(2));
const rows = [
  [
    "where",
    "H",
    "B",
    "particles x K",
    "train steps/s",
    "particle-steps/s",
    "sampler |GPU-CPU|",
    "params |GPU-CPU| after training",
  ],
];
const addPair = (where, r) => {
  const shape = `${r.particles} x ${r.sample_steps}`;
  rows.push([
    `${where} GPU (${r.adapter})`,
    r.hidden,
    r.batch,
    shape,
    f1(r.gpu_train_steps_per_s),
    e2(r.gpu_particle_steps_per_s),
    e2(r.sample_max_abs_diff),
    e2(r.train_max_abs_diff),
  ]);
  rows.push([
    `${where} CPU twin`,
    r.hidden,
    r.batch,
    `${r.cpu_particles} x ${r.sample_steps}`,
    f1(r.cpu_train_steps_per_s),
    e2(r.cpu_particle_steps_per_s),
    "",
    "",
  ]);
};
for (const r of native ?? []) addPair("native", r);
for (const r of inBrowser) {
  if (r.error) rows.push(["browser", "", "", "", "error", r.error, "", ""]);
  else addPair("browser (wasm)", r);
}
for (const r of peer ?? []) {
  rows.push([
    `PyTorch ${r.framework.split(" ")[1]} CPU (${r.threads} threads)`,
    r.hidden,
    r.batch,
    `${r.particles} x ${r.sample_steps}`,
    f1(r.train_steps_per_s),
    e2(r.particle_steps_per_s),
    "",
    "",
  ]);
}
const tenK = inBrowser.find((r) => !r.error && r.particles === PARTICLES);
const stepMs = tenK ? (PARTICLES / tenK.gpu_particle_steps_per_s) * 1000 : null;
const frameOk = stepMs !== null && stepMs <= FRAME_MS;
console.log("");
console.log(
  `diffusion kernels: ${new Date().toISOString()}, ${info.cpu}, ${info.cores} cores, load ${info.loadAverage1m}; browser ${chromium}; training ${TRAIN_STEPS} steps (same batches GPU and CPU), sampling DDPM (linear, T = 1000) respaced to ${SAMPLE_STEPS} steps`,
);
console.log(table(rows));
console.log(
  `browser: one sampler step for ${PARTICLES} particles at H = ${HIDDEN}: ${stepMs === null ? "n/a" : stepMs.toFixed(1) + " ms"}; target one frame at 60 fps (${FRAME_MS.toFixed(1)} ms): ${frameOk ? "ok" : "MISSED"}`,
);
const results = {
  date: new Date().toISOString(),
  machine: info,
  chromium,
  native,
  browser: inBrowser,
  peer_cpu: peer,
  browser_step_ms_10k: stepMs,
  frame_target_met: frameOk,
  page_errors: problems,
};
writeFileSync(path.join(OUT, "diffusion.json"), JSON.stringify(results, null, 2) + "\n");
log(`results: ${path.relative(REPO_ROOT, path.join(OUT, "diffusion.json"))}`);
if (!frameOk && process.env.BENCH_STRICT === "1") process.exit(1);
