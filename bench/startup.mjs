// Benchmark 2: time from navigation to the first widget being interactive, i.e. the
// `ready` promise of the first <ml-ppo-clip> on www/index.html resolved (it resolves
// after the first draw, once the controls work). Measured in the page with
// performance.now() (navigation start = 0), in a fresh browser context per run (empty
// HTTP cache), median of RUNS. Standalone: node bench/startup.mjs with MLPLAY_URL set.

import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { launchBrowser, pageUrl, webgpuFromEnv } from "../tests/e2e/browser.mjs";
import { WWW, isMain, median, table } from "./common.mjs";
import { gzipSize } from "./size.mjs";

export const TARGET_MS = 500;
const SELECTOR = "ml-ppo-clip";

// Runs in the page before any of its scripts.
function recordReady(selector) {
  const t = (window.__mlBench = {});
  customElements
    .whenDefined(selector)
    .then(() => {
      t.defined = performance.now();
      return document.querySelector(selector).ready;
    })
    .then(() => (t.ready = performance.now()));
}

async function oneRun(browser, url, { timeout, collectRequests }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    await context.addInitScript(recordReady, SELECTOR);
    const page = await context.newPage();
    const requests = [];
    if (collectRequests) {
      page.on("response", (r) => requests.push({ url: r.url(), status: r.status() }));
    }
    await page.goto(url, { waitUntil: "commit" });
    await page.waitForFunction(() => window.__mlBench?.ready !== undefined, null, { timeout });
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const wasm = performance.getEntriesByType("resource").find((e) => e.name.endsWith(".wasm"));
      return {
        ready: window.__mlBench.ready,
        defined: window.__mlBench.defined,
        domContentLoaded: nav?.domContentLoadedEventEnd,
        wasmLoaded: wasm?.responseEnd,
      };
    });
    return { ...t, requests };
  } finally {
    await context.close();
  }
}

/** Every same-origin file the page requested, with its gzip -9 size (read from www/). */
function pageLoadSizes(requests, base) {
  const seen = new Set();
  const files = [];
  for (const { url, status } of requests) {
    if (status !== 200 || !url.startsWith(base)) continue;
    let rel = decodeURIComponent(new URL(url).pathname).replace(/^\//, "");
    if (rel === "" || rel.endsWith("/")) rel += "index.html";
    if (seen.has(rel)) continue;
    seen.add(rel);
    const file = path.join(WWW, rel);
    if (!existsSync(file)) continue;
    const buf = readFileSync(file);
    files.push({ file: rel, raw: buf.length, gzip: gzipSize(buf) });
  }
  return { files, gzip: files.reduce((s, f) => s + f.gzip, 0) };
}

export async function measureStartup({
  runs = Number(process.env.BENCH_STARTUP_RUNS || 5),
  webgpu = webgpuFromEnv(),
  timeout = 30_000,
} = {}) {
  const url = pageUrl("index.html");
  const browser = await launchBrowser({ webgpu });
  const results = [];
  try {
    for (let i = 0; i < runs; i++) {
      results.push(await oneRun(browser, url, { timeout, collectRequests: i === 0 }));
    }
  } finally {
    await browser.close();
  }
  const ready = results.map((r) => r.ready);
  // The widget's own share: module, wasm instantiation and first draw after the HTML is
  // parsed (the rest is the server, the network stack and the HTML/CSS).
  const afterDcl = results.map((r) => r.ready - r.domContentLoaded);
  const round = (x) => (x === undefined ? null : Math.round(x * 10) / 10);
  return {
    url,
    webgpu,
    browser: browser.version(),
    runs: results.map((r) => ({
      readyMs: round(r.ready),
      definedMs: round(r.defined),
      domContentLoadedMs: round(r.domContentLoaded),
      wasmLoadedMs: round(r.wasmLoaded),
    })),
    medianMs: round(median(ready)),
    minMs: round(Math.min(...ready)),
    maxMs: round(Math.max(...ready)),
    medianAfterDomContentLoadedMs: round(median(afterDcl)),
    targetMs: TARGET_MS,
    withinTarget: median(ready) <= TARGET_MS,
    pageLoad: pageLoadSizes(results[0].requests, new URL(url).origin + "/"),
  };
}

if (isMain(import.meta.url)) {
  const r = await measureStartup();
  console.log(
    table([
      ["run", "ready (ms)", "element defined", "DOMContentLoaded", "wasm loaded"],
      ...r.runs.map((x, i) => [i + 1, x.readyMs, x.definedMs, x.domContentLoadedMs, x.wasmLoadedMs]),
    ]),
  );
  console.log(`after DOMContentLoaded: median ${r.medianAfterDomContentLoadedMs} ms`);
  console.log(`median ${r.medianMs} ms (target <= ${r.targetMs} ms), ${r.browser}, WebGPU flag ${r.webgpu}`);
}
