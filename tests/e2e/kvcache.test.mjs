// <ml-kv-cache> in a real browser: loads cleanly and draws both panels (light, dark,
// desktop, phone); keyboard moves of the batch and K/V-head sliders change the bytes as the
// formula says (written here from REFERENCE.md: 2 x layers x kv heads x head dim x tokens x
// batch x bytes) and change the pixels; a bad value becomes a notice; the CLI agrees.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT } from "./browser.mjs";
import {
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

const EMBED = "embed.html?w=kv-cache";
const PANELS = 2;
const DEFAULTS = Object.freeze({
  preset: "llama-3-70b",
  context: 32768,
  batch: 1,
  dtype: "bf16",
  "kv-heads": 0,
  gpu: "80",
});
const GIB = 2 ** 30;
// Llama-3-70B's config.json: 80 layers, 64 query heads, 8 K/V heads, head_dim 128.
const kvBytes = ({ layers = 80, kv = 8, dim = 128, tokens, batch, bytes = 2 }) =>
  2 * layers * kv * dim * tokens * batch * bytes;

describe("<ml-kv-cache>", () => {
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
      test(`loads without errors and draws both panels (${label})`, { timeout: 90_000 }, async () => {
        const { context, page, problems } = await openPage(browser, { colorScheme, phone });
        try {
          await gotoReady(page, EMBED);
          const widget = page.locator("ml-kv-cache");
          const s = await stateOf(widget);
          assert.deepEqual(s.params, DEFAULTS, "defaults");
          assert.deepEqual(s.notices, []);
          // REFERENCE.md: 320 KiB per token, 10 GiB at 32,768 tokens in bf16.
          assert.equal(s.data.bytes_per_token, 320 * 1024);
          assert.equal(s.data.bytes, 10 * GIB);
          for (let panel = 0; panel < PANELS; panel++) await assertDrawn(widget, panel, label);
          await assertNoSidewaysScroll(page, label);
          await page.evaluate(() => document.fonts.ready);
          await page.waitForTimeout(200);
          await page.screenshot({ path: shotPath("kv-cache", colorScheme, phone), fullPage: true });
          assertClean(problems, label);
        } finally {
          await context.close();
        }
      });
    }
  }

  test("batch and K/V-head sliders change the bytes as the formula says", { timeout: 90_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, EMBED);
      const widget = page.locator("ml-kv-cache");
      const h0 = await canvasHash(widget, 0);
      const h1 = await canvasHash(widget, 1);
      await pressOnSlider(widget, "batch", "ArrowRight", 3);
      await waitForState(widget, (s) => s.params.batch === 4);
      let s = await stateOf(widget);
      assert.equal(await readoutOf(widget, "batch"), "4");
      assert.equal(s.data.bytes, kvBytes({ tokens: 32768, batch: 4 }), "4 sequences: 40 GiB");
      assert.equal(s.data.bytes, 40 * GIB);
      assert.notEqual(await canvasHashChange(widget, 0, h0), h0, "bars redrawn");
      assert.notEqual(await canvasHashChange(widget, 1, h1), h1, "curves redrawn");

      // Home on the K/V-head slider is 0 (the model's own 8); one notch right is 1: MQA.
      await pressOnSlider(widget, "kv-heads", "ArrowRight", 1);
      await waitForState(widget, (st) => st.params["kv-heads"] === 1);
      s = await stateOf(widget);
      assert.equal(s.data.n_kv_heads, 1);
      assert.equal(s.data.bytes, kvBytes({ kv: 1, tokens: 32768, batch: 4 }), "MQA: 5 GiB");
      // 64 K/V heads is MHA: 80 GiB per sequence.
      await widget.evaluate((el) => (el["kv-heads"] = 64));
      await waitForState(widget, (st) => st.params["kv-heads"] === 64);
      s = await stateOf(widget);
      assert.equal(s.data.per_sequence_bytes, 80 * GIB);
      // 100 does not divide 64 query heads: 64 is used and the panel says so.
      await widget.evaluate((el) => (el["kv-heads"] = 100));
      await waitForState(widget, (st) => st.params["kv-heads"] === 100);
      s = await stateOf(widget);
      assert.equal(s.data.n_kv_heads, 64);
      assert.match(s.data.note, /do not divide 64 query heads; using 64/);
      assertClean(problems, "sliders");
    } finally {
      await context.close();
    }
  });

  test("a bad attribute becomes a notice and the widget keeps drawing", { timeout: 90_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, `${EMBED}&dtype=fp8&context=999999999`);
      const widget = page.locator("ml-kv-cache");
      const s = await stateOf(widget);
      assert.equal(s.params.dtype, "bf16", "unknown type: the default");
      assert.equal(s.params.context, 131072, "too long: clamped");
      const keys = s.notices.map((n) => n.key).sort();
      assert.deepEqual(keys, ["context", "dtype"]);
      for (let panel = 0; panel < PANELS; panel++) await assertDrawn(widget, panel, "after bad values");
      assertClean(problems, "bad values");
    } finally {
      await context.close();
    }
  });

  test("same numbers on the CLI and in the browser", { timeout: 90_000 }, async () => {
    const cli = path.join(REPO_ROOT, "target", "release", "mlplay");
    assert.ok(existsSync(cli), `${cli} missing: build it with ./build.sh`);
    const args = ["kv-cache", "--preset", "qwen2.5-7b", "--context", "65536", "--batch", "3"];
    const fromCli = JSON.parse(
      execFileSync(cli, [...args, "--dtype", "fp16", "--json"], { encoding: "utf8" }),
    );
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, `${EMBED}&preset=qwen2.5-7b&context=65536&batch=3&dtype=fp16`);
      const s = await stateOf(page.locator("ml-kv-cache"));
      assert.deepEqual(s.data, fromCli, "every number, bit for bit");
      // Qwen2.5-7B: 2 x 28 x 4 x 128 x 2 bytes per token.
      assert.equal(fromCli.bytes_per_token, 2 * 28 * 4 * 128 * 2);
      assertClean(problems, "cli parity");
    } finally {
      await context.close();
    }
  });
});
