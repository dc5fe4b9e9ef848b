// <ml-flash-attention> in a real browser, with WebGPU (SwiftShader) and without: loads
// cleanly and draws its four panels (light, dark, desktop, phone); the tile-step slider moves
// one key tile per notch and the running max and sum follow the online-softmax recurrence
// (checked here from the step's own scores); at the last step the output equals naive
// attention; the traffic calculator reproduces Dao et al.'s counts (written here); the live
// timing measures both kernels on this device and they agree.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  MODE,
  approx,
  assertClean,
  assertNoSidewaysScroll,
  assertDrawn,
  canvasHash,
  canvasHashChange,
  gotoReady,
  openBrowser,
  openPage,
  pressOnSlider,
  readoutOf,
  shotPath,
  stateOf,
  waitForState,
} from "./_support.mjs";

const EMBED = "embed.html?w=flash-attention";
const PANELS = 4;
const DEFAULTS = Object.freeze({ step: 6, causal: "off", seed: 2, n: 4096, d: "64", sram: 192, heads: 4 });
const GPU = MODE === "webgpu";

// Dao et al. 2022: standard attention reads and writes 4Nd + 4N^2 elements; Algorithm 1 with
// B_c = ceil(M / 4d) reads K, V once and each query row's Q, O, l, m per outer step.
const standard = (n, d) => 2 * (4 * n * d + 4 * n * n);
const flashAlg1 = (n, d, m) => 2 * (2 * n * d + Math.ceil(n / Math.ceil(m / (4 * d))) * n * (3 * d + 4));

describe(`<ml-flash-attention> (${MODE})`, () => {
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
      test(`loads without errors and draws ${PANELS} panels (${label})`, { timeout: 180_000 }, async () => {
        const { context, page, problems } = await openPage(browser, { colorScheme, phone });
        try {
          await gotoReady(page, EMBED);
          const widget = page.locator("ml-flash-attention");
          const s = await stateOf(widget);
          assert.deepEqual(s.params, DEFAULTS, "defaults");
          assert.deepEqual(s.notices, []);
          await waitForState(widget, (st) => st.data.timing.rows.length >= 1, null, { timeout: 120_000 });
          for (let panel = 0; panel < PANELS; panel++) await assertDrawn(widget, panel, label);
          const badge = await widget.evaluate((el) => el.shadowRoot.querySelector(".badge").textContent);
          assert.match(badge, GPU ? /^WebGPU: \S/ : /^CPU: no WebGPU/);
          await assertNoSidewaysScroll(page, label);
          await page.evaluate(() => document.fonts.ready);
          await page.waitForTimeout(200);
          await page.screenshot({ path: shotPath("flash-attention", colorScheme, phone), fullPage: true });
          assertClean(problems, label);
        } finally {
          await context.close();
        }
      });
    }
  }

  test("each notch reads one key tile; m and l follow the online softmax", { timeout: 120_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, `${EMBED}&step=1`);
      const widget = page.locator("ml-flash-attention");
      let prev = (await stateOf(widget)).data.demo;
      assert.deepEqual([prev.q_tile, prev.kv_tile], [0, 0]);
      // Step 1: m = rowmax S, l = rowsum e^(S - m).
      prev.scores.forEach((row, r) => {
        const m = Math.max(...row);
        approx(prev.m[r], m, 1e-6, `m[${r}]`);
        approx(
          prev.l[r],
          row.reduce((a, x) => a + Math.exp(x - m), 0),
          1e-5,
          `l[${r}]`,
        );
      });
      const h0 = await canvasHash(widget, 0);
      for (let k = 2; k <= 4; k++) {
        await pressOnSlider(widget, "step", "ArrowRight", 1);
        await waitForState(widget, (s, k) => s.params.step === k, k);
        const cur = (await stateOf(widget)).data.demo;
        assert.equal(await readoutOf(widget, "step"), String(k));
        assert.deepEqual([cur.q_tile, cur.kv_tile], [0, k - 1], "query tile 0 reads key tiles in turn");
        cur.scores.forEach((row, r) => {
          const m = Math.max(prev.m[r], ...row);
          approx(cur.m[r], m, 1e-6, `m[${r}] at step ${k}`);
          const l = Math.exp(prev.m[r] - m) * prev.l[r] + row.reduce((a, x) => a + Math.exp(x - m), 0);
          approx(cur.l[r], l, 1e-5 * l, `l[${r}] at step ${k}`);
        });
        prev = cur;
      }
      // Query tile 0 is finished: rows 0-3 equal naive attention.
      assert.equal(prev.finished_rows, 4);
      assert.ok(prev.finished_max_abs_diff < 1e-5);
      // Generous wait: under load the GPU process (SwiftShader) can hold frames back while the
      // live timing runs its kernels, so the redraw may come seconds late.
      assert.notEqual(await canvasHashChange(widget, 0, h0, { timeout: 30_000 }), h0, "tiles redrawn");
      // The last step: everything equals naive attention.
      await pressOnSlider(widget, "step", "End", 1);
      await waitForState(widget, (s) => s.params.step === 16);
      const end = (await stateOf(widget)).data.demo;
      assert.equal(end.finished_rows, 16);
      end.flash.forEach((row, i) => row.forEach((v, j) => approx(v, end.naive[i][j], 1e-5, `O[${i}][${j}]`)));
      // Causal: 10 steps, the tiles above the diagonal are skipped.
      await widget.evaluate((el) => (el.causal = "on"));
      await waitForState(widget, (s) => s.params.causal === "on");
      const causal = (await stateOf(widget)).data.demo;
      assert.equal(causal.steps, 10);
      assert.ok(
        causal.tiles.every(([q, k]) => k <= q),
        "no tile above the diagonal",
      );
      assert.equal(causal.done, 10, "step 16 is past the end: all 10 done");
      assertClean(problems, "steps");
    } finally {
      await context.close();
    }
  });

  test("the traffic calculator gives the paper's counts", { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, `${EMBED}&n=16384&d=128&sram=100`);
      const s = await stateOf(page.locator("ml-flash-attention"));
      const t = s.data.traffic;
      const m = (100 * 1024) / 2; // fp16 elements
      assert.equal(t.at_n.standard_bytes, standard(16384, 128));
      assert.equal(t.at_n.flash_bytes, flashAlg1(16384, 128, m));
      t.n.forEach((n, i) => {
        assert.equal(t.standard_bytes[i], standard(n, 128), `standard at ${n}`);
        assert.equal(t.flash_bytes[i], flashAlg1(n, 128, m), `flash at ${n}`);
      });
      assertClean(problems, "traffic");
    } finally {
      await context.close();
    }
  });

  test("the live timing measures both kernels, which agree", { timeout: 240_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, `${EMBED}&heads=2`);
      const widget = page.locator("ml-flash-attention");
      await waitForState(widget, (s) => s.data.timing.status !== "measuring", null, { timeout: 200_000 });
      const t = (await stateOf(widget)).data.timing;
      assert.equal(t.status, "done", t.error || "");
      assert.equal(t.on_gpu, GPU);
      assert.equal(t.heads, 2);
      assert.ok(t.rows.length >= 2, `${t.rows.length} sizes measured`);
      assert.deepEqual(
        t.rows.map((r) => r.n),
        [128, 256, 512, 1024, 2048, 4096].slice(0, t.rows.length),
      );
      for (const r of t.rows) {
        assert.ok(r.naive_ms > 0 && r.flash_ms > 0, `N = ${r.n}`);
        assert.ok(r.max_abs_diff <= 1e-4, `N = ${r.n}: naive vs flash ${r.max_abs_diff}`);
      }
      if (!GPU) assert.ok(t.rows.at(-1).n <= 512, "the CPU stops at 512");
      assertClean(problems, "timing");
    } finally {
      await context.close();
    }
  });
});
