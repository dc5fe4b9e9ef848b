// <ml-transformer> in a real browser (the suite runs with WebGPU on and off; the widget
// trains on the CPU either way): it loads with zero console errors in light, dark, desktop
// and phone width, trains a few steps (the loss falls and equals, bit for bit, what
// `mlplay transformer` prints for the same configuration), the attention maps change as it
// trains (state and pixels), hovering a row or pressing ↑ picks the query, the prompt and
// the temperature change the next-token distribution, a prompt outside the task's alphabet
// shows a notice and keeps the prompt in force, and the panels export.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT } from "./browser.mjs";
import {
  MODE,
  approx,
  assertClean,
  assertDrawn,
  assertNoSidewaysScroll,
  canvasHash,
  canvasHashChange,
  gotoReady,
  openBrowser,
  openPage,
  pressOnSlider,
  shotPath,
  stateOf,
  waitForState,
} from "./_support.mjs";

const PANELS = 5;
const CLI = path.join(REPO_ROOT, "target", "release", "mlplay");
const trained = (s) => s.data.step >= s.data.steps && s.data.analysis.step === s.data.step;

/** Trains to the `steps` parameter and waits for the last look at the model. */
async function trainToEnd(widget, timeout = 90_000) {
  await widget.evaluate((el) => el.play());
  await waitForState(widget, trained, null, { timeout });
  return stateOf(widget);
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const entropy = (p) => -p.reduce((s, x) => s + (x > 0 ? x * Math.log(x) : 0), 0);

describe("<ml-transformer>", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const colorScheme of ["light", "dark"]) {
    for (const phone of [false, true]) {
      const label = `${colorScheme} ${phone ? "phone 390px" : "desktop 1200px"}`;
      test(`loads, trains a few steps, draws every panel (${label})`, { timeout: 120_000 }, async () => {
        const { context, page, problems } = await openPage(browser, { colorScheme, phone });
        try {
          await gotoReady(page, "embed.html?w=transformer&steps=20");
          const widget = page.locator("ml-transformer");
          const badge = await widget.evaluate((el) => el.shadowRoot.querySelector(".badge").textContent);
          assert.equal(badge, "CPU: WebAssembly");
          const s = await trainToEnd(widget);
          assert.deepEqual(s.notices, []);
          assert.equal(s.data.history.loss.length, 20);
          for (let panel = 0; panel < PANELS; panel++) await assertDrawn(widget, panel, label);
          await assertNoSidewaysScroll(page, label);
          await page.screenshot({ path: shotPath("transformer", colorScheme, phone), fullPage: true });
          assertClean(problems, label);
        } finally {
          await context.close();
        }
      });
    }
  }

  test(
    "backend=webgpu: trains on the GPU where there is one, on the CPU with a note where not",
    { timeout: 240_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        // A small model: SwiftShader runs the WGSL on the CPU, seconds per step at the default size.
        const cfg = "task=copy&layers=1&heads=2&d_model=16&ctx=8&batch=4&seed=3&steps=10";
        await gotoReady(page, `embed.html?w=transformer&${cfg}&backend=webgpu`);
        const widget = page.locator("ml-transformer");
        const s = await trainToEnd(widget, 200_000);
        const badge = await widget.evaluate((el) => el.shadowRoot.querySelector(".badge").textContent);
        assert.equal(s.data.history.loss.length, 10);
        if (MODE === "webgpu") {
          assert.equal(s.data.backend, "webgpu");
          assert.match(badge, /^WebGPU/);
          assert.equal(s.data.note, null);
        } else {
          assert.equal(s.data.backend, "cpu");
          assert.equal(badge, "CPU: WebAssembly");
          assert.match(s.data.note, /no WebGPU/);
        }
        // The same run on the CPU, in the same page. tests/wasm.rs bounds a GPU step's loss by
        // S_f K u times a logit scale of 10 (S_f = 11 L + 3 = 14 rounding stages, K = the longest
        // sum, here d_ff = 64, u = 2^-24): 5.3e-4. Observed on lavapipe and SwiftShader: ~2e-7.
        const bound = 14 * 64 * 2 ** -24 * 10;
        await gotoReady(page, `embed.html?w=transformer&${cfg}&backend=cpu`);
        const cpu = await trainToEnd(page.locator("ml-transformer"));
        cpu.data.history.loss.forEach((l, k) =>
          approx(s.data.history.loss[k], l, bound, `loss at step ${k + 1}`),
        );
        // The maps are of the parameters read back at the last step: causal distributions.
        assert.equal(s.data.analysis.step, 10);
        for (const layer of s.data.analysis.maps)
          for (const head of layer)
            head.forEach((row, i) => {
              assert.ok(Math.abs(row.reduce((x, y) => x + y, 0) - 1) < 1e-6);
              assert.ok(row.slice(i + 1).every((w) => w === 0));
            });
        assertClean(problems, "backend=webgpu");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "training: the loss falls, equals the CLI's, and the maps change (state and pixels)",
    { timeout: 150_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        // The copy task: it learns within tens of steps (the induction task sits on a plateau
        // near ln 26 for its first ~2,000 steps).
        await gotoReady(page, "embed.html?w=transformer&task=copy&steps=60");
        const widget = page.locator("ml-transformer");
        const before = await stateOf(widget);
        assert.equal(before.data.step, 0);
        assert.equal(before.data.analysis.step, 0);
        const mapsHash = await canvasHash(widget, 1);
        const s = await trainToEnd(widget);
        const loss = s.data.history.loss;
        // A uniform guess costs ln V (16 letters and "|": ln 17 = 2.833); 60 Adam steps bring the
        // batch loss down.
        assert.ok(Math.abs(loss[0] - Math.log(17)) < 0.15, `first loss ${loss[0]}`);
        assert.ok(
          mean(loss.slice(-10)) < mean(loss.slice(0, 10)) - 0.05,
          `loss ${loss.slice(0, 3)} ... ${loss.slice(-3)}`,
        );
        assert.equal(s.data.analysis.step, 60);
        assert.notDeepEqual(s.data.analysis.maps, before.data.analysis.maps);
        // Every map row is a causal distribution.
        for (const layer of s.data.analysis.maps)
          for (const head of layer)
            head.forEach((row, i) => {
              assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-9);
              assert.ok(row.slice(i + 1).every((w) => w === 0));
            });
        // Looked at every 10 steps: 0, 10, ..., 60.
        assert.deepEqual(s.data.score_history.step, [0, 10, 20, 30, 40, 50, 60]);
        assert.notEqual(await canvasHashChange(widget, 1, mapsHash), mapsHash, "the maps' pixels change");
        if (existsSync(CLI)) {
          const c = s.data.config;
          const out = execFileSync(
            CLI,
            [
              "transformer",
              ...["--task", c.task, "--layers", c.layers, "--heads", c.heads, "--d-model", c.d_model],
              ...["--ctx", c.ctx, "--batch", c.batch, "--pos", c.pos, "--tied", c.tied, "--lr", c.lr],
              ...["--seed", c.seed, "--steps", 60, "--log-every", 1, "--json"].map(String),
            ].map(String),
          );
          const lines = out
            .toString()
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l));
          const cliLoss = lines.filter((l) => "loss" in l).map((l) => l.loss);
          // The same data, initialisation and f64 formulas (crate::math) natively and in wasm;
          // only the matrix products round differently in the last bits (ndarray's
          // matrixmultiply uses FMA kernels natively, scalar code in wasm): 1 ulp at step 1
          // (3.3069199456759186 against ...919), and far below 1e-6 after 60 steps.
          assert.equal(cliLoss.length, loss.length);
          cliLoss.forEach((l, k) => approx(loss[k], l, 1e-6, `loss at step ${k + 1}`));
          lines
            .at(-1)
            .induction.forEach((row, l) =>
              row.forEach((v, h) => approx(s.data.analysis.induction[l][h], v, 1e-6, `induction L${l}H${h}`)),
            );
        }
        assertClean(problems, "training");
      } finally {
        await context.close();
      }
    },
  );

  test("hovering a row or pressing ↑ picks the query; the pixels follow", { timeout: 90_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, "embed.html?w=transformer");
      const widget = page.locator("ml-transformer");
      const s0 = await stateOf(widget);
      const last = s0.data.analysis.probe.length - 1;
      assert.equal(s0.data.query, last);
      const canvas = widget.locator('canvas[data-panel="1"]');
      await canvas.scrollIntoViewIfNeeded();
      const hash = await canvasHash(widget, 1);
      // The first map's square starts 54 px in (labels) and 22 px down; hover its top row.
      const box = await canvas.boundingBox();
      await page.mouse.move(box.x + 80, box.y + 24);
      await waitForState(widget, (s) => s.data.query === 0);
      assert.notEqual(await canvasHashChange(widget, 1, hash), hash, "hover redraws the outline");
      await canvas.focus();
      await page.keyboard.press("End");
      await page.keyboard.press("ArrowUp");
      await waitForState(widget, (s, last) => s.data.query === last - 1, last);
      assertClean(problems, "query");
    } finally {
      await context.close();
    }
  });

  test(
    "prompt and temperature change the distribution; a bad prompt shows a notice and keeps state",
    { timeout: 90_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=transformer&steps=30");
        const widget = page.locator("ml-transformer");
        await trainToEnd(widget);
        const s0 = await stateOf(widget);
        const r = await widget.evaluate((el) => el.setText("qwertyqwe"));
        assert.ok(r.ok, r.message);
        const s1 = await stateOf(widget);
        assert.equal(s1.data.generation.prompt, "qwertyqwe");
        assert.equal(s1.data.custom_prompt, true);
        assert.notDeepEqual(s1.data.generation.next, s0.data.generation.next);
        assert.ok(Math.abs(s1.data.generation.next.reduce((a, b) => a + b, 0) - 1) < 1e-12);
        // Temperature up: p_T ∝ p^(1/T) flattens, so the entropy rises.
        const hash = await canvasHash(widget, 4);
        await pressOnSlider(widget, "temp", "End", 1);
        await waitForState(widget, (s) => s.params.temp === 10 && s.data.generation.temperature === 10);
        const s2 = await stateOf(widget);
        assert.ok(entropy(s2.data.generation.next) > entropy(s1.data.generation.next));
        assert.notEqual(await canvasHashChange(widget, 4, hash), hash, "the bars redraw");
        // Capitals are not in the induction task's alphabet (a-z).
        const bad = await widget.evaluate((el) => el.setText("Qwerty!"));
        assert.equal(bad.ok, false);
        assert.match(bad.message, /'Q' is not in the induction task's alphabet/);
        const s3 = await stateOf(widget);
        assert.ok(s3.notices.some((n) => n.key === "text" && /alphabet/.test(n.message)));
        assert.equal(s3.data.generation.prompt, "qwertyqwe", "the prompt in force is kept");
        assert.equal(s3.data.step, 30, "training is kept");
        assertClean(problems, "prompt");
      } finally {
        await context.close();
      }
    },
  );

  test("the loss curve exports as CSV and the maps as PNG", { timeout: 90_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, "embed.html?w=transformer&steps=20");
      const widget = page.locator("ml-transformer");
      const s = await trainToEnd(widget);
      const download = async (panel, kind) => {
        const [d] = await Promise.all([
          page.waitForEvent("download"),
          widget.locator(`button[data-export="${kind}"][data-panel="${panel}"]`).click(),
        ]);
        return readFileSync(await d.path());
      };
      const csv = (await download(0, "csv")).toString().trim().split("\n");
      assert.equal(csv[0], "step,loss,accuracy,grad_norm");
      assert.equal(csv.length - 1, 20);
      assert.equal(Number(csv.at(-1).split(",")[1]), s.data.history.loss.at(-1));
      const png = await download(1, "png");
      assert.equal(png.subarray(1, 4).toString(), "PNG");
      const maps = (await download(1, "csv")).toString().trim().split("\n");
      assert.equal(maps[0], "layer,head,query,key,query_token,key_token,weight");
      // Causal maps: T(T+1)/2 entries per head.
      const t = s.data.analysis.probe.length;
      const heads = s.data.config.layers * s.data.config.heads;
      assert.equal(maps.length - 1, (heads * t * (t + 1)) / 2);
      assertClean(problems, "exports");
    } finally {
      await context.close();
    }
  });
});
