// Attention kernels (`./build.sh bench` runs this after bench/run.mjs, with MLPLAY_URL
// pointing at a static server for www/):
//   1. native: GFLOP/s (4 N^2 d per head) of the naive and flash WGSL kernels on the machine's
//      wgpu adapter (lavapipe in CI) through `cargo run --release --example attention_bench`;
//   2. browser: the same kernels in headless Chromium (SwiftShader under
//      --enable-unsafe-webgpu), through the page's GPU context (`benchAttention` of the wasm
//      module), N = 256 ... 8192, d = 64, 8 heads, best of REPS; a kernel stops growing N once
//      one run passes BUDGET_MS (the next would take about four times longer);
//   3. <ml-attention>'s long sequence at N = 1024 (its own heads and d): the GPU time of the
//      flash kernel against one frame, 16 ms.
// ATTENTION_NATIVE=0 skips part 1. Results: bench-out/attention.json (and attention-gpu.*
// from part 1). BENCH_STRICT=1 makes a missed target an error (exit 1).

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { launchBrowser, pageUrl } from "../tests/e2e/browser.mjs";
import { REPO_ROOT, machine, table } from "./common.mjs";

const log = (msg) => console.log(`    ${msg}`);
const info = machine();
const OUT = path.join(REPO_ROOT, "bench-out");
const SIZES = [256, 512, 1024, 2048, 4096, 8192];
const HEADS = 8;
const HEAD_DIM = 64;
const REPS = Number(process.env.ATTENTION_REPS || 3);
const BUDGET_MS = Number(process.env.ATTENTION_BUDGET_MS || 20_000);
const FRAME_MS = 16;
mkdirSync(OUT, { recursive: true });

// ---- 1. native (lavapipe) -------------------------------------------------------------------
let native = null;
if (process.env.ATTENTION_NATIVE !== "0") {
  log("native: cargo run --release --features gpu --example attention_bench");
  const r = spawnSync(
    "cargo",
    [
      "run",
      "--quiet",
      "--release",
      "--features",
      "gpu",
      "--example",
      "attention_bench",
      "--",
      "--sizes",
      SIZES.join(","),
      "--heads",
      String(HEADS),
      "--head-dim",
      String(HEAD_DIM),
      "--reps",
      String(REPS),
      "--budget-s",
      String(BUDGET_MS / 1000),
      "--out",
      OUT,
    ],
    { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 << 20 },
  );
  process.stdout.write(r.stdout || "");
  if (r.status === 0) native = JSON.parse(readFileSync(path.join(OUT, "attention-gpu.json"), "utf8"));
  else log(`native benchmark failed (exit ${r.status})`);
}

// ---- 2. browser (SwiftShader) ---------------------------------------------------------------
const browser = await launchBrowser({ webgpu: true });
const page = await (await browser.newContext()).newPage();
const problems = [];
page.on("pageerror", (e) => problems.push(e.message));
await page.goto(pageUrl("embed.html?w=kv-cache"), { waitUntil: "load" });
await page.waitForFunction(() => customElements.get("ml-kv-cache"));
const chromium = browser.version();

const inBrowser = [];
for (const kernel of ["naive", "flash"]) {
  for (const n of SIZES) {
    log(`browser: ${kernel} N = ${n}`);
    const r = await page.evaluate(
      async ({ kernel, n, heads, d, reps }) => {
        const m = await import(new URL("pkg-bench/mlplay.js", location.href).href);
        await m.default(); // its own instance: the benchmarks module, beside the page's
        try {
          return JSON.parse(await m.benchAttention(kernel, n, heads, d, reps));
        } catch (e) {
          return { error: String(e.message || e) };
        }
      },
      { kernel, n, heads: HEADS, d: HEAD_DIM, reps: REPS },
    );
    inBrowser.push({ kernel, n, ...r });
    if (r.error || r.best_ms > BUDGET_MS) break;
  }
}

// ---- 3. <ml-attention>'s long sequence at N = 1024 -------------------------------------------
log("browser: <ml-attention> long sequence, N = 1024");
const widget = await browser.newContext().then((c) => c.newPage());
await widget.goto(pageUrl("embed.html?w=attention&long-n=1024"), { waitUntil: "load" });
await widget.waitForFunction(
  () => {
    const el = document.querySelector("ml-attention");
    return el && el.state?.data?.long?.status === "done";
  },
  null,
  { timeout: 300_000, polling: 200 },
);
const long = await widget.evaluate(() => {
  const d = document.querySelector("ml-attention").state.data;
  return { ...d.long, pooled_head0: undefined, adapter: d.adapter };
});
await browser.close();

// ---- report ---------------------------------------------------------------------------------
const rows = [["where", "kernel", "N", "best ms", "GFLOP/s", "timing", "max|diff| vs other kernel"]];
for (const r of native?.results ?? []) {
  rows.push([
    "native",
    r.variant,
    r.n,
    r.best_ms.toFixed(2),
    r.gflops.toFixed(2),
    r.method,
    r.max_abs_diff_vs_naive_gpu.toExponential(1),
  ]);
}
for (const r of inBrowser) {
  rows.push(
    r.error
      ? ["browser", r.kernel, r.n, "error", "", r.error, ""]
      : [
          "browser",
          r.kernel,
          r.n,
          r.best_ms.toFixed(2),
          r.gflops.toFixed(2),
          r.method,
          r.max_abs_diff_vs_other.toExponential(1),
        ],
  );
}
const frameOk = long.on_gpu && long.flash_ms <= FRAME_MS;
console.log("");
console.log(
  `attention kernels: ${new Date().toISOString()}, ${info.cpu}, ${info.cores} cores, load ${info.loadAverage1m}; native adapter ${native?.adapter ?? "none"}; browser ${chromium} ${inBrowser.find((r) => r.adapter)?.adapter ?? ""}; d = ${HEAD_DIM}, ${HEADS} heads, best of ${REPS}`,
);
console.log(table(rows));
console.log(
  `<ml-attention> long sequence N = ${long.n} (${long.heads} heads, d = ${long.head_dim}) on ${long.adapter}: flash ${long.flash_ms.toFixed(1)} ms, naive ${long.naive_ms.toFixed(1)} ms (${long.timing}); target: flash within one frame (${FRAME_MS} ms): ${frameOk ? "ok" : "MISSED"}`,
);
const results = {
  date: new Date().toISOString(),
  machine: info,
  chromium,
  heads: HEADS,
  head_dim: HEAD_DIM,
  reps: REPS,
  budget_ms: BUDGET_MS,
  native,
  browser: inBrowser,
  widget_long: long,
  frame_target_met: frameOk,
  page_errors: problems,
};
writeFileSync(path.join(OUT, "attention.json"), JSON.stringify(results, null, 2) + "\n");
log(`results: ${path.relative(REPO_ROOT, path.join(OUT, "attention.json"))}`);
if (!frameOk && process.env.BENCH_STRICT === "1") process.exit(1);
