// Transformer training throughput (`./build.sh bench` runs this after bench/run.mjs, with
// MLPLAY_URL pointing at a static server for www/): training tokens per second (batch x ctx
// positions per step: forward, backward, clip, Adam) of the default model
// (TrainConfig::default(): induction task, 26 tokens, d_model 32, 2 layers x 2 heads, ctx 24,
// batch 16), GPU and CPU paths side by side, in one run each:
//   1. native: the WGSL kernels (crate/src/gpu/transformer.wgsl) on the machine's wgpu adapter
//      (lavapipe here) beside the CPU Trainer, `cargo run --release --example transformer_bench`;
//   2. browser: the same through the page's GPU context (SwiftShader in headless Chromium under
//      --enable-unsafe-webgpu) and the wasm CPU Trainer, via `benchTransformer`;
//   3. the PyTorch peer bench/transformer_peer.py (same model, batch, Adam and clip) on this
//      machine's CPU, from target/bench-venv (benches/requirements.txt, installed when missing).
// TRANSFORMER_NATIVE=0 / TRANSFORMER_PEER=0 skip parts 1 / 3; TRANSFORMER_PY names another
// Python with torch. Results: bench-out/transformer.json.

import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { launchBrowser, pageUrl } from "../tests/e2e/browser.mjs";
import { REPO_ROOT, machine, peerPython, table } from "./common.mjs";

const log = (msg) => console.log(`    ${msg}`);
const info = machine();
const OUT = path.join(REPO_ROOT, "bench-out");
const STEPS = Number(process.env.TRANSFORMER_STEPS || 30);
mkdirSync(OUT, { recursive: true });

// ---- 1. native (lavapipe) --------------------------------------------------------------------
let native = null;
if (process.env.TRANSFORMER_NATIVE !== "0") {
  log("native: cargo run --release --features gpu --example transformer_bench");
  const r = spawnSync(
    "cargo",
    [
      ...["run", "--quiet", "--release", "--features", "gpu", "--example", "transformer_bench", "--"],
      ...["--gpu-steps", String(STEPS), "--cpu-steps", String(STEPS), "--out", OUT],
    ],
    { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20 },
  );
  process.stdout.write(r.stdout || "");
  if (r.status === 0) native = JSON.parse(readFileSync(path.join(OUT, "transformer-gpu.json"), "utf8"));
  else log(`native benchmark failed (exit ${r.status})`);
}

// ---- 2. browser (SwiftShader) ----------------------------------------------------------------
const browser = await launchBrowser({ webgpu: true });
const page = await (await browser.newContext()).newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(e.message));
await page.goto(pageUrl("embed.html?w=ppo-clip"), { waitUntil: "load" });
const chromium = browser.version();
log(`browser: benchTransformer(${STEPS}, ${STEPS})`);
const inBrowser = await page.evaluate(async (steps) => {
  const m = await import(new URL("pkg-bench/mlplay.js", location.href).href);
  try {
    await m.default(); // its own instance: the benchmarks module, beside the page's
    return JSON.parse(await m.benchTransformer(steps, steps));
  } catch (e) {
    return { error: String(e.message || e) };
  }
}, STEPS);
await browser.close();

// ---- 3. the PyTorch peer on the CPU ----------------------------------------------------------
let peer = null;
if (process.env.TRANSFORMER_PEER !== "0") {
  const py = peerPython(process.env.TRANSFORMER_PY, "torch", log);
  peer = [];
  for (const sdpa of [false, true]) {
    log(`peer: bench/transformer_peer.py --device cpu${sdpa ? " --sdpa" : ""}`);
    const out = execFileSync(
      py,
      [
        path.join(REPO_ROOT, "bench", "transformer_peer.py"),
        ...["--device", "cpu", "--steps", String(STEPS)],
        ...(sdpa ? ["--sdpa"] : []),
      ],
      { encoding: "utf8" },
    );
    peer.push(JSON.parse(out.trim().split("\n").at(-1)));
  }
}

// ---- report ----------------------------------------------------------------------------------
const f0 = (x) => (x === undefined || x === null ? "" : Math.round(Number(x)).toString());
const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : "");
const torchCpu = peer?.[0]?.tokens_per_s;
const rows = [["where", "tokens/s", "vs PyTorch CPU", "last loss", "|GPU-CPU| last loss"]];
const addPair = (where, r) => {
  rows.push([
    `${where} GPU (${r.adapter})`,
    f0(r.gpu_tokens_per_s),
    ratio(r.gpu_tokens_per_s, torchCpu),
    r.gpu_last_loss.toFixed(4),
    r.last_loss_abs_diff === null ? "" : Number(r.last_loss_abs_diff).toExponential(1),
  ]);
  rows.push([
    `${where} CPU Trainer`,
    f0(r.cpu_tokens_per_s),
    ratio(r.cpu_tokens_per_s, torchCpu),
    r.cpu_last_loss.toFixed(4),
    "",
  ]);
};
if (native) addPair("native", native);
if (inBrowser.error) rows.push(["browser", "error", inBrowser.error, "", ""]);
else addPair("browser (wasm)", inBrowser);
for (const r of peer ?? []) {
  rows.push([
    `PyTorch ${r.torch} CPU, eager fp32${r.sdpa ? " + SDPA" : ""} (${r.threads} threads)`,
    f0(r.tokens_per_s),
    ratio(r.tokens_per_s, torchCpu),
    r.last_loss.toFixed(4),
    "",
  ]);
}
console.log("");
console.log(
  `transformer training: ${new Date().toISOString()}, ${info.cpu}, ${info.cores} cores, load ${info.loadAverage1m}; browser ${chromium}; default model, ${STEPS} steps each (the same batches GPU and CPU Trainer)`,
);
console.log(table(rows));
const results = {
  date: new Date().toISOString(),
  machine: info,
  chromium,
  steps: STEPS,
  native,
  browser: inBrowser,
  peer_cpu: peer,
  page_errors: problems,
};
writeFileSync(path.join(OUT, "transformer.json"), JSON.stringify(results, null, 2) + "\n");
log(`results: ${path.relative(REPO_ROOT, path.join(OUT, "transformer.json"))}`);
