// <ml-attention> in a real browser, with WebGPU (SwiftShader) and without (MLPLAY_WEBGPU=0):
// loads cleanly, draws its three panels (light, dark, desktop, phone) and names its backend
// in the badge; the GPU's weights equal the CPU twin's within 1e-4; the temperature slider
// moves the weights as the formula says (softmax(s/T) = softmax(log softmax(s) / T), derived
// here, not read back); the causal toggle zeroes the future; K/V heads group the query heads;
// the text box takes a sentence; the long sequence runs naive and flash to the same output.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT } from "./browser.mjs";
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
  shotPath,
  stateOf,
  waitForState,
} from "./_support.mjs";

const EMBED = "embed.html?w=attention";
const PANELS = 3;
const DEFAULTS = Object.freeze({
  sentence: "cat",
  temp: 1,
  causal: "off",
  heads: 4,
  "kv-heads": 2,
  query: 8,
  seed: 1,
  "long-n": 1024,
});
const GPU = MODE === "webgpu";

/** Waits until the numbers drawn come from where this run expects them. */
async function settled(widget, { long = true, timeout = 120_000 } = {}) {
  await waitForState(
    widget,
    (s, arg) => {
      const d = s.data;
      const sentence = arg.gpu ? d.backend === "webgpu" && d.weights_source === "gpu" : d.backend === "cpu";
      return d.gpu_error || (sentence && (!arg.long || d.long.status === "done"));
    },
    { gpu: GPU, long },
    { timeout },
  );
  const s = await stateOf(widget);
  assert.equal(s.data.gpu_error, null, "no GPU error");
  return s;
}

const softmax = (z) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const t = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / t);
};

describe(`<ml-attention> (${MODE})`, () => {
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
      test(
        `loads without errors, names its backend and draws ${PANELS} panels (${label})`,
        { timeout: 180_000 },
        async () => {
          const { context, page, problems } = await openPage(browser, { colorScheme, phone });
          try {
            await gotoReady(page, EMBED);
            const widget = page.locator("ml-attention");
            const s = await settled(widget);
            assert.deepEqual(s.params, DEFAULTS, "defaults");
            assert.deepEqual(s.notices, []);
            const badge = await widget.evaluate((el) => el.shadowRoot.querySelector(".badge").textContent);
            if (GPU) {
              assert.match(badge, /^WebGPU: \S/, "badge names the adapter");
              assert.equal(s.data.adapter, badge);
            } else {
              assert.match(badge, /^CPU: no WebGPU/, "badge says why the CPU computes");
            }
            for (let panel = 0; panel < PANELS; panel++) await assertDrawn(widget, panel, label);
            await assertNoSidewaysScroll(page, label);
            await page.evaluate(() => document.fonts.ready);
            await page.waitForTimeout(200);
            await page.screenshot({ path: shotPath("attention", colorScheme, phone), fullPage: true });
            assertClean(problems, label);
          } finally {
            await context.close();
          }
        },
      );
    }
  }

  test("GPU weights equal the CPU twin's; rows are distributions", { timeout: 180_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, EMBED);
      const widget = page.locator("ml-attention");
      const s = await settled(widget, { long: false });
      const { weights, tokens, kv_head_of: kvOf } = s.data.sentence;
      assert.equal(weights.length, 4);
      assert.equal(tokens.join(" "), "the cat sat on the mat because it was tired");
      assert.deepEqual(kvOf, [0, 0, 1, 1], "g(h) = floor(h / (H / G))");
      for (const head of weights) {
        for (const row of head)
          approx(
            row.reduce((a, b) => a + b, 0),
            1,
            1e-5,
            "row sum",
          );
      }
      if (GPU) {
        assert.equal(s.data.weights_source, "gpu");
        assert.ok(s.data.gpu_cpu_max_abs_diff <= 1e-4, `GPU vs CPU: ${s.data.gpu_cpu_max_abs_diff}`);
      } else {
        assert.equal(s.data.weights_source, "cpu");
        assert.equal(s.data.gpu_cpu_max_abs_diff, null);
      }
      assertClean(problems, "gpu == cpu");
    } finally {
      await context.close();
    }
  });

  test(
    "temperature, causal mask and K/V heads change the weights as the formulas say",
    { timeout: 180_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, EMBED);
        const widget = page.locator("ml-attention");
        const s1 = await settled(widget, { long: false });
        const h0 = await canvasHash(widget, 0);
        // Keyboard: the log-scale temperature slider, three notches up.
        await pressOnSlider(widget, "temp", "ArrowRight", 3);
        await waitForState(widget, (s) => s.params.temp > 1);
        const s2 = await settled(widget, { long: false });
        const T = s2.params.temp;
        assert.ok(T > 1.2 && T < 1.6, `three notches of about 12%: ${T}`);
        // softmax(s / T) = softmax(log softmax(s) / T).
        s1.data.sentence.weights.forEach((head, h) =>
          head.forEach((row, i) => {
            const want = softmax(row.map((p) => Math.log(p) / T));
            want.forEach((p, j) =>
              approx(s2.data.sentence.weights[h][i][j], p, 2e-4, `T=${T} w[${h}][${i}][${j}]`),
            );
          }),
        );
        assert.notEqual(await canvasHashChange(widget, 0, h0, { timeout: 30_000 }), h0, "heatmaps redrawn");

        // Causal: no weight on a later token; the first token attends only to itself.
        await widget.evaluate((el) => (el.causal = "on"));
        const s3 = await settled(widget, { long: false });
        for (const head of s3.data.sentence.weights) {
          head.forEach((row, i) =>
            row.forEach((p, j) => j > i && assert.equal(p, 0, `future weight ${i},${j}`)),
          );
          approx(head[0][0], 1, 1e-6, "token 0 sees only itself");
        }

        // MQA: one K/V head for all four query heads; MHA: one each.
        await widget.evaluate((el) => (el["kv-heads"] = 1));
        let s = await settled(widget, { long: false });
        assert.deepEqual(s.data.sentence.kv_head_of, [0, 0, 0, 0]);
        await widget.evaluate((el) => (el["kv-heads"] = 4));
        s = await settled(widget, { long: false });
        assert.deepEqual(s.data.sentence.kv_head_of, [0, 1, 2, 3]);
        // 3 does not divide 4: 2 is used, and the state says so.
        await widget.evaluate((el) => (el["kv-heads"] = 3));
        s = await settled(widget, { long: false });
        assert.equal(s.data.sentence.n_kv_heads, 2);
        assert.match(s.data.sentence.note, /using 2/);
        assertClean(problems, "formulas");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "the text box takes a sentence from the vocabulary and refuses other words",
    { timeout: 180_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, EMBED);
        const widget = page.locator("ml-attention");
        await settled(widget, { long: false });
        const ok = await widget.evaluate((el) => el.setText("The dog ran home"));
        assert.equal(ok.ok, true, ok.message);
        let s = await settled(widget, { long: false });
        assert.deepEqual(s.data.sentence.tokens, ["the", "dog", "ran", "home"]);
        assert.equal(s.data.sentence.query, 3, "query clamped to the last token");
        assert.equal(s.data.sentence.weights[0].length, 4);
        const bad = await widget.evaluate((el) => el.setText("the unicorn ran home"));
        assert.equal(bad.ok, false);
        assert.match(bad.message, /"unicorn"/);
        s = await stateOf(widget);
        assert.deepEqual(s.data.sentence.tokens, ["the", "dog", "ran", "home"], "data in force kept");
        assert.ok(
          s.notices.some((n) => n.key === "text" && /unicorn/.test(n.message)),
          "notice shown",
        );
        // Another preset replaces the typed sentence.
        await widget.evaluate((el) => (el.sentence = "river"));
        s = await settled(widget, { long: false });
        assert.equal(s.data.sentence.tokens.join(" "), "the bank of the river was quiet");
        assertClean(problems, "text");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "the long sequence: naive and flash agree, timed, pooled rows are distributions",
    { timeout: 240_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, `${EMBED}&long-n=768&heads=2&kv-heads=1&causal=on`);
        const widget = page.locator("ml-attention");
        const s = await settled(widget);
        const L = s.data.long;
        assert.equal(L.status, "done");
        assert.equal(L.on_gpu, GPU);
        assert.equal(L.n, GPU ? 768 : 512, GPU ? "all tokens on the GPU" : "the CPU stops at 512");
        assert.ok(L.max_abs_diff_naive_flash <= 1e-4, `naive vs flash: ${L.max_abs_diff_naive_flash}`);
        assert.ok(L.naive_ms > 0 && L.flash_ms > 0);
        assert.equal(L.scores_bytes, 2 * L.n * L.n * 4, "H N^2 floats of scores");
        assert.equal(L.pooled_head0.length, 64);
        L.pooled_head0.forEach((row, a) => {
          approx(
            row.reduce((x, y) => x + y, 0),
            1,
            1e-3,
            `pooled row ${a}`,
          );
          // Causal: no mass on key blocks that start after the row block ends.
          row.forEach((v, b) => {
            if (Math.floor((b * L.n) / 64) >= Math.floor(((a + 1) * L.n) / 64))
              assert.equal(v, 0, `block ${a},${b}`);
          });
        });
        if (GPU) assert.match(L.timing, /timestamp|performance\.now/);
        assertClean(problems, "long");
      } finally {
        await context.close();
      }
    },
  );

  test("the CLI prints the same weights", { timeout: 120_000 }, async () => {
    const cli = path.join(REPO_ROOT, "target", "release", "mlplay");
    assert.ok(existsSync(cli), `${cli} missing: build it with ./build.sh`);
    const args = [
      "attention",
      "--widget",
      "--sentence",
      "book",
      "--temp",
      "0.7",
      "--heads",
      "3",
      "--kv-heads",
      "1",
    ];
    const fromCli = JSON.parse(execFileSync(cli, [...args, "--json"], { encoding: "utf8" }));
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, `${EMBED}&sentence=book&temp=0.7&heads=3&kv-heads=1`);
      const s = await settled(page.locator("ml-attention"), { long: false });
      assert.deepEqual(s.params, fromCli.params);
      const a = s.data.sentence;
      const b = fromCli.data.sentence;
      assert.deepEqual(a.tokens, b.tokens);
      assert.deepEqual(a.kv_head_of, b.kv_head_of);
      // Matrix products are summed in other orders natively (SIMD) and in wasm, and on the
      // GPU: equal within f32 rounding.
      let worst = 0;
      a.weights.forEach((head, h) =>
        head.forEach((row, i) =>
          row.forEach((p, j) => (worst = Math.max(worst, Math.abs(p - b.weights[h][i][j])))),
        ),
      );
      assert.ok(worst <= 1e-5, `browser vs CLI weights: ${worst}`);
      assertClean(problems, "cli parity");
    } finally {
      await context.close();
    }
  });
});
