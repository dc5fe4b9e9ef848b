// Benchmark 3: JS heap under continuous slider changes. On www/index.html the first
// <ml-ppo-clip> gets a new `eps` every animation frame (a triangle sweep over the
// slider's range, so every frame redraws with a different value) for DURATION seconds.
// Every INTERVAL seconds the loop pauses for two frames, and a forced garbage collection (CDP HeapProfiler.collectGarbage)
// is followed by a sample of the used JS heap (CDP Runtime.getHeapUsage). The trend is
// the least-squares slope in KB per minute; "no growth trend" means the slope is below
// 5 % of the first sample per minute. The loop runs WARMUP seconds before the first
// sample (first-use allocations are not a trend). DOM node / listener counts are reported too
// (a leak of nodes or listeners shows there). Standalone: node bench/heap.mjs with
// MLPLAY_URL set; BENCH_HEAP_SECONDS / BENCH_HEAP_INTERVAL /
// BENCH_HEAP_WARMUP override 60 / 5 / 10.

import { launchBrowser, pageUrl, waitForWidget, webgpuFromEnv } from "../tests/e2e/browser.mjs";
import { KB, isMain, kb, linearFit, table } from "./common.mjs";

export const TREND_LIMIT = 0.05; // of the baseline, per minute
const SELECTOR = "ml-ppo-clip";

// Runs in the page: start changing eps every animation frame.
function startSliderLoop(selector) {
  const el = document.querySelector(selector);
  el.scrollIntoView({ block: "start" });
  const input = el.shadowRoot.querySelector('input[data-key="eps"]');
  const min = Number(input?.min ?? 0.01);
  const max = Number(input?.max ?? 0.5);
  const step = Number(input?.step ?? 0.01);
  const n = Math.max(2, Math.round((max - min) / step));
  const s = (window.__mlHeap = { changes: 0, stop: false, paused: false, lastError: null });
  let i = 0;
  const tick = () => {
    if (s.stop) return;
    if (s.paused) {
      requestAnimationFrame(tick);
      return;
    }
    const k = i % (2 * n);
    const v = min + step * (k <= n ? k : 2 * n - k);
    try {
      el.eps = Math.round(v * 1e6) / 1e6;
      s.changes++;
    } catch (err) {
      s.lastError = String(err);
    }
    i++;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

const last_t = (samples) => samples.at(-1).t;

export async function measureHeap({
  seconds = Number(process.env.BENCH_HEAP_SECONDS || 60),
  interval = Number(process.env.BENCH_HEAP_INTERVAL || 5),
  warmup = Number(process.env.BENCH_HEAP_WARMUP ?? 10),
  webgpu = webgpuFromEnv(),
  log = () => {},
} = {}) {
  const url = pageUrl("index.html");
  const browser = await launchBrowser({ webgpu });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url);
    await waitForWidget(page, SELECTOR);
    const cdp = await context.newCDPSession(page);
    const sample = async (t0) => {
      // Pause the loop for two frames so no half-finished redraw holds garbage alive.
      await page.evaluate(
        () =>
          new Promise((resolve) => {
            window.__mlHeap.paused = true;
            requestAnimationFrame(() => requestAnimationFrame(resolve));
          }),
      );
      // Two collections with a pause between them: the first one queues the
      // FinalizationRegistry callbacks (wasm-bindgen frees Rust objects there), the
      // second one collects what those callbacks released.
      await cdp.send("HeapProfiler.collectGarbage");
      await new Promise((r) => setTimeout(r, 100));
      await cdp.send("HeapProfiler.collectGarbage");
      const heap = await cdp.send("Runtime.getHeapUsage");
      const dom = await cdp.send("Memory.getDOMCounters");
      const changes = await page.evaluate(() => {
        window.__mlHeap.paused = false;
        return window.__mlHeap.changes;
      });
      return {
        t: (performance.now() - t0) / 1000,
        usedBytes: heap.usedSize,
        nodes: dom.nodes,
        listeners: dom.jsEventListeners,
        changes,
      };
    };

    await page.evaluate(startSliderLoop, SELECTOR);
    // Warm-up: let first-use allocations (caches, lazily created objects) settle before
    // the baseline sample.
    if (warmup > 0) {
      log(`heap: ${warmup} s warm-up`);
      await new Promise((r) => setTimeout(r, warmup * 1000));
    }
    const t0 = performance.now();
    const samples = [await sample(t0)];
    log(`heap: ${kb(samples[0].usedBytes)} at 0 s`);
    for (let k = 1; k * interval <= seconds; k++) {
      const wait = t0 + k * interval * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const s = await sample(t0);
      samples.push(s);
      log(`heap: ${kb(s.usedBytes)} at ${s.t.toFixed(0)} s (${s.changes} slider changes)`);
    }
    const status = await page.evaluate(() => {
      window.__mlHeap.stop = true;
      return { changes: window.__mlHeap.changes, lastError: window.__mlHeap.lastError };
    });
    await context.close();

    const fit = linearFit(
      samples.map((s) => s.t / 60),
      samples.map((s) => s.usedBytes / KB),
    );
    const half = samples.filter((x) => x.t >= last_t(samples) / 2);
    const fitLastHalf = linearFit(
      half.map((x) => x.t / 60),
      half.map((x) => x.usedBytes / KB),
    );
    const first = samples[0];
    const last = samples.at(-1);
    const baselineKB = first.usedBytes / KB;
    return {
      url,
      webgpu,
      browser: browser.version(),
      seconds,
      interval,
      warmup,
      sliderChanges: status.changes,
      changesPerSecond: Math.round(status.changes / last.t),
      pageErrors: errors.concat(status.lastError ? [status.lastError] : []),
      samples,
      slopeKBPerMin: Math.round(fit.slope * 10) / 10,
      r2: Math.round(fit.r2 * 100) / 100,
      slopeLastHalfKBPerMin: Math.round(fitLastHalf.slope * 10) / 10,
      firstBytes: first.usedBytes,
      lastBytes: last.usedBytes,
      minBytes: Math.min(...samples.map((s) => s.usedBytes)),
      maxBytes: Math.max(...samples.map((s) => s.usedBytes)),
      nodes: [first.nodes, last.nodes],
      listeners: [first.listeners, last.listeners],
      trendLimitKBPerMin: Math.round(baselineKB * TREND_LIMIT * 10) / 10,
      noGrowthTrend: fit.slope <= baselineKB * TREND_LIMIT,
    };
  } finally {
    await browser.close();
  }
}

if (isMain(import.meta.url)) {
  const r = await measureHeap({ log: console.log });
  console.log(
    table([
      ["t (s)", "JS heap used", "DOM nodes", "listeners", "slider changes"],
      ...r.samples.map((s) => [s.t.toFixed(1), kb(s.usedBytes), s.nodes, s.listeners, s.changes]),
    ]),
  );
  console.log(
    `slope ${r.slopeKBPerMin} KB/min (second half ${r.slopeLastHalfKBPerMin}; limit ${r.trendLimitKBPerMin}), first ${kb(r.firstBytes)}, last ${kb(r.lastBytes)}: ${r.noGrowthTrend ? "no growth trend" : "GROWING"}`,
  );
}
