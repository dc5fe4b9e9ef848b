// All benchmarks: `./build.sh bench` runs this with MLPLAY_URL pointing at a static
// server for www/. Prints one table and writes bench-out/results.json.
// BENCH_STRICT=1 makes a missed target an error (exit 1).

import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { webgpuFromEnv } from "../tests/e2e/browser.mjs";
import { REPO_ROOT, kb, machine, table } from "./common.mjs";
import { measureHeap } from "./heap.mjs";
import { measureSizes } from "./size.mjs";
import { measureStartup } from "./startup.mjs";

const log = (msg) => console.log(`    ${msg}`);
const webgpu = webgpuFromEnv();
const info = machine(); // before the runs: the load average is other work, not ours

log("size: www/pkg and www/mlplay.js");
const size = measureSizes();
log(`startup: index.html, fresh context per run (WebGPU flag ${webgpu ? "on" : "off"})`);
const startup = await measureStartup({ webgpu });
log(`heap: ${process.env.BENCH_HEAP_SECONDS || 60} s of eps changes every animation frame`);
const heap = await measureHeap({ webgpu, log });

const mark = (ok) => (ok ? "ok" : "MISSED");
const rows = [
  ["benchmark", "result", "target", "status"],
  ["wasm module, raw", kb(size.wasm.raw), "", ""],
  ["wasm module, gzip -9", kb(size.wasm.gzip), "", ""],
  [
    "widget payload, gzip -9 (mlplay.js + pkg/*.js + wasm)",
    kb(size.total.gzip),
    `<= ${kb(size.budgetGzip, 0)}`,
    mark(size.withinBudget),
  ],
  [
    `index.html, all ${startup.pageLoad.files.length} files it loads, gzip -9`,
    kb(startup.pageLoad.gzip),
    "",
    "",
  ],
  [
    `first widget interactive, median of ${startup.runs.length}`,
    `${startup.medianMs} ms (min ${startup.minMs}, max ${startup.maxMs})`,
    `<= ${startup.targetMs} ms`,
    mark(startup.withinTarget),
  ],
  ["  of which after DOMContentLoaded (median)", `${startup.medianAfterDomContentLoadedMs} ms`, "", ""],
  [
    `JS heap trend, ${heap.seconds} s of slider changes`,
    `${heap.slopeKBPerMin >= 0 ? "+" : ""}${heap.slopeKBPerMin} KB/min (${kb(heap.firstBytes)} -> ${kb(heap.lastBytes)})`,
    `< ${heap.trendLimitKBPerMin} KB/min (5% of baseline)`,
    mark(heap.noGrowthTrend),
  ],
];

console.log("");
console.log(
  `mlplay benchmarks: ${new Date().toISOString()}, ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, load average ${info.loadAverage1m}, Chromium ${startup.browser}, WebGPU flag ${webgpu ? "on" : "off"}`,
);
console.log(table(rows));
console.log(
  `startup runs (ms): ${startup.runs.map((r) => r.readyMs).join(", ")}; heap: ${heap.sliderChanges} slider changes (${heap.changesPerSecond}/s), DOM nodes ${heap.nodes.join(" -> ")}, listeners ${heap.listeners.join(" -> ")}, second-half slope ${heap.slopeLastHalfKBPerMin} KB/min`,
);
if (heap.pageErrors.length) console.log(`page errors during the heap run: ${heap.pageErrors.join("; ")}`);

const out = path.join(REPO_ROOT, "bench-out");
mkdirSync(out, { recursive: true });
const results = { date: new Date().toISOString(), machine: info, webgpu, size, startup, heap };
writeFileSync(path.join(out, "results.json"), JSON.stringify(results, null, 2) + "\n");
log(`results: ${path.relative(REPO_ROOT, path.join(out, "results.json"))}`);

const missed = [
  !size.withinBudget && "size budget",
  !startup.withinTarget && "startup target",
  !heap.noGrowthTrend && "heap trend",
].filter(Boolean);
if (missed.length) {
  console.log(`targets missed: ${missed.join(", ")}`);
  if (process.env.BENCH_STRICT === "1") process.exit(1);
} else {
  console.log("all targets met");
}
