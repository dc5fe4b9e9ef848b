// Page-level helpers shared by the site's end-to-end tests (tests/e2e/*.test.mjs).
// Not a test file: `node --test` only runs *.test.mjs. Browser launch, MLPLAY_URL and the
// screenshot folder come from browser.mjs; this adds what the page tests need on top:
// a watcher for console errors, failed and cross-origin requests, "every widget on the
// page is ready", canvas fingerprints, and the PPO clip formulas the tests check against.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { baseUrl, launchBrowser, pageUrl, shotsDir, webgpuFromEnv } from "./browser.mjs";

export { baseUrl, pageUrl, webgpuFromEnv };

export const MODE = webgpuFromEnv() ? "webgpu" : "cpu";

/** The site's pages, as paths under MLPLAY_URL. */
export const PAGES = Object.freeze({
  index: "index.html",
  guide: "embed-guide.html",
  course: "examples/course.html",
  embed: "embed.html?w=ppo-clip",
});

/** Defaults of <ml-ppo-clip>, as the widget contract states them. */
export const PPO_DEFAULTS = Object.freeze({
  eps: 0.2,
  adv: 1,
  lr: 0.5,
  epochs: 20,
  actions: 4,
  seed: 3,
});

export const PPO_KEYS = Object.keys(PPO_DEFAULTS);

/**
 * One browser for a test file, launched with or without WebGPU as MLPLAY_WEBGPU says.
 * Fails early, with a useful message, when nothing serves MLPLAY_URL.
 */
export async function openBrowser() {
  const base = baseUrl();
  try {
    const res = await fetch(base, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
  } catch (err) {
    throw new Error(
      `nothing answers at MLPLAY_URL=${base} (${err.message}). Serve www/ first, e.g. ` +
        "`cd www && python3 -m http.server --bind 127.0.0.1 8123`, and set MLPLAY_URL.",
    );
  }
  return launchBrowser({ webgpu: webgpuFromEnv() });
}

/**
 * A new page in its own context. `problems` fills with everything a clean page must not
 * have: console errors, uncaught exceptions, failed requests, HTTP errors, and any request
 * to an origin other than MLPLAY_URL's. `warnings` collects console warnings (reported,
 * not failed on).
 */
export async function openPage(
  browser,
  { colorScheme = "light", viewport = { width: 1200, height: 900 }, phone = false } = {},
) {
  const context = await browser.newContext({
    colorScheme,
    viewport: phone ? { width: 390, height: 844 } : viewport,
    deviceScaleFactor: phone ? 2 : 1,
    isMobile: phone,
    hasTouch: phone,
  });
  const page = await context.newPage();
  const origin = new URL(baseUrl()).origin;
  const problems = [];
  const warnings = [];
  page.on("console", (msg) => {
    const where = msg.location()?.url || "";
    if (msg.type() === "error") problems.push(`console.error: ${msg.text()} (${where})`);
    if (msg.type() === "warning") warnings.push(`console.warn: ${msg.text()} (${where})`);
  });
  page.on("pageerror", (err) => problems.push(`uncaught: ${err.message}`));
  page.on("requestfailed", (req) => {
    problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`);
  });
  page.on("response", (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  page.on("request", (req) => {
    const url = req.url();
    if (/^(data|blob|about):/.test(url)) return;
    if (new URL(url).origin !== origin) problems.push(`request to another origin: ${url}`);
  });
  return { context, page, problems, warnings };
}

/**
 * Waits until every <ml-*> element on the page is defined and its `ready` promise has
 * resolved. Widgets start when they come near the viewport, so each is scrolled to first,
 * as a reader would. Returns the number of widgets.
 */
export async function widgetsReady(page, { timeout = 30_000, atLeast = 1 } = {}) {
  // embed.html creates its element from a module script after the load event; wait for it.
  await page.waitForFunction(
    (n) => [...document.querySelectorAll("*")].filter((e) => e.localName.startsWith("ml-")).length >= n,
    atLeast,
    { timeout },
  );
  const count = await page.evaluate(
    () => [...document.querySelectorAll("*")].filter((e) => e.localName.startsWith("ml-")).length,
  );
  for (let i = 0; i < count; i++) {
    await page.evaluate(
      async ({ i, timeout }) => {
        const el = [...document.querySelectorAll("*")].filter((e) => e.localName.startsWith("ml-"))[i];
        el.scrollIntoView({ block: "center" });
        let timer;
        const late = new Promise((_, reject) => {
          timer = setTimeout(() => {
            // Say what state it is stuck in, for the report.
            const rect = el.getBoundingClientRect();
            const why = {
              defined: !!customElements.get(el.localName),
              rect: [rect.top, rect.height].map(Math.round),
              viewport: [scrollY, innerHeight],
              visibility: document.visibilityState,
              shadow: el.shadowRoot?.textContent.replace(/\s+/g, " ").slice(0, 200) ?? null,
            };
            reject(
              new Error(`<${el.localName}> #${i}: not ready after ${timeout} ms: ${JSON.stringify(why)}`),
            );
          }, timeout);
        });
        try {
          await Promise.race([
            (async () => {
              await customElements.whenDefined(el.localName);
              await el.ready;
            })(),
            late,
          ]);
        } finally {
          clearTimeout(timer);
        }
      },
      { i, timeout },
    );
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  return count;
}

/** Loads a page of the site and waits for its widgets. */
export async function gotoReady(page, pathUnderBase, options) {
  await page.goto(pageUrl(pathUnderBase), { waitUntil: "load" });
  return widgetsReady(page, options);
}

/** `state` of a widget (a Playwright locator for the element), as a plain object. */
export function stateOf(widget) {
  return widget.evaluate((el) => el.state);
}

/** Polls a widget until `predicate(state)` (run in the page) holds. */
export async function waitForState(widget, predicate, arg, { timeout = 10_000 } = {}) {
  const handle = await widget.elementHandle();
  await widget.page().waitForFunction(
    ({ el, source, arg }) => {
      const fn = new Function("state", "arg", `return (${source})(state, arg);`);
      return fn(el.state, arg);
    },
    { el: handle, source: predicate.toString(), arg },
    { timeout },
  );
}

/** SHA-1 of a panel canvas's PNG (toDataURL), to tell whether its pixels changed. */
export async function canvasHash(widget, panel) {
  const url = await widget.evaluate(
    (el, panel) => el.shadowRoot.querySelector(`canvas[data-panel="${panel}"]`).toDataURL(),
    panel,
  );
  return createHash("sha1").update(url).digest("hex");
}

/** Polls until a panel's hash differs from `before`; returns the new hash (or the old). */
export async function canvasHashChange(widget, panel, before, { timeout = 5000 } = {}) {
  const end = Date.now() + timeout;
  let now = before;
  while (Date.now() < end) {
    now = await canvasHash(widget, panel);
    if (now !== before) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
  return now;
}

/**
 * What a panel canvas holds: its size in device pixels and how many distinct colours
 * (quantised to 4 bits a channel) and non-background pixels it has.
 */
export function canvasInk(widget, panel) {
  return widget.evaluate((el, panel) => {
    const c = el.shadowRoot.querySelector(`canvas[data-panel="${panel}"]`);
    const { width, height } = c;
    if (!width || !height) return { width, height, colours: 0, ink: 0 };
    const copy = document.createElement("canvas");
    copy.width = width;
    copy.height = height;
    const ctx = copy.getContext("2d");
    ctx.drawImage(c, 0, 0);
    const px = ctx.getImageData(0, 0, width, height).data;
    const colours = new Set();
    const bg = px.slice(0, 4).join(",");
    let ink = 0;
    for (let i = 0; i < px.length; i += 4) {
      colours.add(((px[i] >> 4) << 8) | ((px[i + 1] >> 4) << 4) | (px[i + 2] >> 4));
      if (`${px[i]},${px[i + 1]},${px[i + 2]},${px[i + 3]}` !== bg) ink++;
    }
    return { width, height, colours: colours.size, ink };
  }, panel);
}

/** Asserts a panel canvas has a real drawing on it (not blank, not one flat colour). */
export async function assertDrawn(widget, panel, what = "") {
  const ink = await canvasInk(widget, panel);
  assert.ok(ink.width > 0 && ink.height > 0, `${what} panel ${panel}: canvas has no size`);
  assert.ok(
    ink.colours >= 4 && ink.ink > 0.01 * ink.width * ink.height,
    `${what} panel ${panel}: canvas looks blank (${JSON.stringify(ink)})`,
  );
}

/** Asserts the page is no wider than the viewport (no sideways scrolling, at phone width too). */
export async function assertNoSidewaysScroll(page, what) {
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  assert.ok(overflow <= 0, `${what}: the page scrolls sideways by ${overflow}px`);
}

/** Fails with the page's problems listed, if there are any. */
export function assertClean(problems, what) {
  assert.deepEqual(problems, [], `${what}: ${problems.length} problem(s):\n${problems.join("\n")}`);
}

/** target/e2e-shots/<name>-<webgpu|cpu>-<light|dark>[-phone].png */
export function shotPath(name, colorScheme, phone = false) {
  return path.join(shotsDir(), `${name}-${MODE}-${colorScheme}${phone ? "-phone" : ""}.png`);
}

export function approx(actual, expected, tol, what) {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} is not within ${tol} of ${expected}`);
}

// ---- PPO's clipped objective, written here from the paper, independently of the crate ----

/** clip(r, 1-eps, 1+eps) */
export const clip = (r, eps) => Math.min(Math.max(r, 1 - eps), 1 + eps);

/** L_clip(r) = min(r A, clip(r, 1-eps, 1+eps) A)   (Schulman et al. 2017, eq. 7) */
export const lClip = (r, adv, eps) => Math.min(r * adv, clip(r, eps) * adv);

/**
 * Checks panel 0's curve for one advantage against the formula: 201 ratios evenly spaced
 * on [0, 2], L_clip, r A, and dL/dr (A where r A is the smaller branch, 0 on the flat parts,
 * i.e. A > 0 and r > 1 + eps, or A < 0 and r < 1 - eps).
 */
export function assertCurve(curve, adv, eps, what) {
  assert.equal(curve.r.length, 201, `${what}: 201 ratios`);
  approx(curve.advantage, adv, 1e-12, `${what}: advantage`);
  for (let i = 0; i < curve.r.length; i++) {
    const r = (2 * i) / 200;
    approx(curve.r[i], r, 1e-12, `${what}: r[${i}]`);
    approx(curve.clipped[i], lClip(r, adv, eps), 1e-9, `${what}: clipped at r=${r}`);
    approx(curve.unclipped[i], r * adv, 1e-9, `${what}: unclipped at r=${r}`);
    const flat = (adv > 0 && r > 1 + eps + 1e-9) || (adv < 0 && r < 1 - eps - 1e-9);
    const nearKink = Math.abs(r - (1 + eps)) < 1e-9 || Math.abs(r - (1 - eps)) < 1e-9;
    if (!nearKink) approx(curve.grad[i], flat ? 0 : adv, 1e-12, `${what}: grad at r=${r}`);
  }
}

/**
 * Panel 1's update, re-derived: a softmax policy over the actions starts at pi_old
 * (logits log pi_old), the surrogate J(theta) = sum_a pi_old(a) L(r_a, A_a) with
 * r_a = pi_theta(a) / pi_old(a), and K steps of gradient ascent theta += lr dJ/dtheta,
 *   dJ/dtheta_j = sum_a pi_old(a) L'(r_a) dr_a/dtheta_j,  dr_a/dtheta_j = r_a (1[a=j] - pi_j).
 * eps = null gives the unclipped surrogate (L = r A).
 */
export function ppoUpdate(piOld, advantages, eps, lr, epochs) {
  const n = piOld.length;
  const softmax = (z) => {
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  const L = (r, a) => (eps === null ? r * a : lClip(r, a, eps));
  const dL = (r, a) => {
    if (eps === null) return a;
    return (a > 0 && r > 1 + eps) || (a < 0 && r < 1 - eps) ? 0 : a;
  };
  let theta = piOld.map(Math.log);
  const ratios = [];
  const objective = [];
  for (let k = 0; k <= epochs; k++) {
    if (k > 0) {
      const pi = softmax(theta);
      const r = pi.map((p, a) => p / piOld[a]);
      const w = r.map((ra, a) => piOld[a] * dL(ra, advantages[a]) * ra);
      const total = w.reduce((a, b) => a + b, 0);
      theta = theta.map((t, j) => t + lr * (w[j] - pi[j] * total));
    }
    const pi = softmax(theta);
    const r = pi.map((p, a) => p / piOld[a]);
    ratios.push(r);
    objective.push(r.reduce((s, ra, a) => s + piOld[a] * L(ra, advantages[a]), 0));
    assert.equal(r.length, n);
  }
  return { ratios, objective };
}

/** Asserts a trajectory from the page equals the re-derived one. */
export function assertTrajectory(actual, expected, what, tol = 1e-6) {
  assert.equal(actual.ratios.length, expected.ratios.length, `${what}: epochs + 1 rows`);
  expected.ratios.forEach((row, k) => {
    assert.equal(actual.ratios[k].length, row.length, `${what}: actions at epoch ${k}`);
    row.forEach((r, a) => approx(actual.ratios[k][a], r, tol, `${what}: ratio[${k}][${a}]`));
    approx(actual.objective[k], expected.objective[k], tol, `${what}: objective[${k}]`);
  });
}

/** Turns a slider in a widget's shadow DOM with the keyboard: focus it, press `key` n times. */
export async function pressOnSlider(widget, paramKey, key, times) {
  const slider = widget.locator(`input[type="range"][data-key="${paramKey}"]`);
  await slider.focus();
  for (let i = 0; i < times; i++) await widget.page().keyboard.press(key);
  return slider;
}

/** The text of the <output> readout that belongs to a slider (nearest one up the tree). */
export function readoutOf(widget, paramKey) {
  return widget.evaluate((el, key) => {
    const input = el.shadowRoot.querySelector(`input[type="range"][data-key="${key}"]`);
    for (let node = input.parentElement; node; node = node.parentElement) {
      const outs = node.querySelectorAll("output");
      if (outs.length === 1) return outs[0].textContent.trim();
      if (outs.length > 1) {
        const own = [...outs].find((o) => o.htmlFor?.contains?.(input.id) || o.dataset.key === key);
        return own ? own.textContent.trim() : null;
      }
    }
    return null;
  }, paramKey);
}
