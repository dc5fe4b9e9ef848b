// Shared browser helpers for the end-to-end tests (tests/e2e/*.test.mjs) and the
// benchmarks (bench/*.mjs). This file is a helper, not a test: `node --test` only runs
// files named *.test.mjs.
//
// The static server is started outside (by `./build.sh test` / `./build.sh bench`),
// which exports:
//   MLPLAY_URL     base URL of the served www/ folder, e.g. http://127.0.0.1:8000/
//   MLPLAY_WEBGPU  "1": launch Chromium with --enable-unsafe-webgpu (SwiftShader WebGPU),
//                  "0": without it, so navigator.gpu.requestAdapter() gives null and the
//                  CPU fallback path runs.
//
// Exports:
//   CHROMIUM_PATH, CHROMIUM_ARGS                the browser and its fixed flags
//   webgpuFromEnv()                             MLPLAY_WEBGPU as a boolean (default true)
//   chromiumArgs({ webgpu })                    the flags for one launch
//   launchBrowser({ webgpu })                   a playwright-core Browser (fresh profile)
//   baseUrl(), pageUrl(path)                    MLPLAY_URL, and a page under it
//   shotsDir(), screenshotPath(name)            target/e2e-shots/ (created on demand)
//   collectPageErrors(page)                     an array that fills with console errors
//                                               and uncaught exceptions of a page
//   waitForWidget(page, selector, { timeout })  waits for customElements.whenDefined and
//                                               the element's `ready` promise

import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const CHROMIUM_PATH = process.env.MLPLAY_CHROMIUM || "/usr/bin/chromium";

// Flags from docs (shared/TOOLCHAIN.md): --no-sandbox because CI runs as root; the rest
// stop Chromium from reaching the network on its own. playwright-core adds --headless
// and a fresh temporary --user-data-dir on every launch (passing our own
// --user-data-dir to launch() is rejected by playwright), so every launch starts from
// an empty profile.
export const CHROMIUM_ARGS = Object.freeze([
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  "--disable-dev-shm-usage",
]);

export function webgpuFromEnv() {
  const v = process.env.MLPLAY_WEBGPU;
  return v === undefined || v === "" ? true : !["0", "false", "no"].includes(v);
}

export function chromiumArgs({ webgpu = webgpuFromEnv() } = {}) {
  // Do not add --use-angle=vulkan: the WebGPU adapter disappears with it.
  return webgpu ? [...CHROMIUM_ARGS, "--enable-unsafe-webgpu"] : [...CHROMIUM_ARGS];
}

export async function launchBrowser({ webgpu = webgpuFromEnv(), ...options } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    chromiumSandbox: false,
    args: chromiumArgs({ webgpu }),
    ...options,
  });
}

export function baseUrl() {
  const url = process.env.MLPLAY_URL || "http://127.0.0.1:8000/";
  return url.endsWith("/") ? url : `${url}/`;
}

export function pageUrl(page = "") {
  return new URL(page.replace(/^\//, ""), baseUrl()).href;
}

export function shotsDir() {
  const dir = path.join(REPO_ROOT, "target", "e2e-shots");
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function screenshotPath(name) {
  const mode = webgpuFromEnv() ? "webgpu" : "cpu";
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, "_");
  return path.join(shotsDir(), `${safe}.${mode}.png`);
}

export function collectPageErrors(page) {
  const errors = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console.error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`uncaught: ${err.message}`));
  return errors;
}

export async function waitForWidget(page, selector, { timeout = 30_000 } = {}) {
  await page.waitForSelector(selector, { state: "attached", timeout });
  return page.evaluate(
    async ({ selector, timeout }) => {
      const el = document.querySelector(selector);
      const tag = el.localName;
      const ready = (async () => {
        await customElements.whenDefined(tag);
        await el.ready;
      })();
      let timer;
      const timedOut = new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${selector}: ready not resolved within ${timeout} ms`)),
          timeout,
        );
      });
      try {
        await Promise.race([ready, timedOut]);
      } finally {
        clearTimeout(timer);
      }
      return performance.now();
    },
    { selector, timeout },
  );
}
