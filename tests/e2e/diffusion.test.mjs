// <ml-diffusion> and <ml-flow-matching> in a real browser: both load with zero console
// errors (light, dark, desktop, phone), fetch their default weights from www/weights/ and
// play them (the reverse process runs to the end and lands near the data, with the same
// sliced Wasserstein distance the CLI prints for the same weights, sampler and seed); the t
// slider moves the cloud as the closed form says; Train trains a few steps in the page and
// replaces the weights; drawn points come from the pointer.

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
  shotPath,
  stateOf,
  waitForState,
} from "./_support.mjs";

const PANELS = 4;
const CLI = path.join(REPO_ROOT, "target", "release", "mlplay");
const allDone = (s) => s.data.runs.length > 0 && s.data.runs.every((r) => r.done);

/** The CLI's sample of the same weights, sampler, steps, particles and seed. */
function cli(weights, sampler, steps, n, seed) {
  const out = execFileSync(CLI, [
    "diffusion-sample",
    "--weights",
    path.join(REPO_ROOT, "www", "weights", weights),
    "--sampler",
    sampler,
    "--steps",
    String(steps),
    "--n",
    String(n),
    "--seed",
    String(seed),
    "--json",
  ]);
  return JSON.parse(out);
}

describe("<ml-diffusion> and <ml-flow-matching>", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const name of ["diffusion", "flow-matching"]) {
    for (const colorScheme of ["light", "dark"]) {
      for (const phone of [false, true]) {
        const label = `${name} ${colorScheme} ${phone ? "phone 390px" : "desktop 1200px"}`;
        test(
          `loads, plays the default weights, draws every panel (${label})`,
          { timeout: 120_000 },
          async () => {
            const { context, page, problems } = await openPage(browser, { colorScheme, phone });
            try {
              await gotoReady(page, `embed.html?w=${name}`);
              const widget = page.locator(`ml-${name}`);
              await waitForState(widget, allDone, null, { timeout: 90_000 });
              const s = await stateOf(widget);
              assert.deepEqual(s.notices, []);
              assert.ok(
                s.data.models.every((m) => m.loaded && m.source === "default weights"),
                label,
              );
              for (const r of s.data.runs) assert.equal(r.completed, r.steps);
              // Two moons: the noise starts at SW 0.33 from the data, fresh data at ~0.03.
              const [first, ddim] = s.data.runs;
              assert.ok(first.swd < 0.12, `${label}: ${first.sampler} SW ${first.swd}`);
              if (ddim) {
                // Flow matching's claim: at 8 network evaluations its samples are closer to the
                // data than DDIM's with the same number of evaluations.
                assert.equal(ddim.network_evaluations, first.network_evaluations);
                assert.ok(first.swd < ddim.swd, `${label}: flow ${first.swd} vs DDIM ${ddim.swd}`);
              }
              for (let panel = 0; panel < PANELS; panel++) await assertDrawn(widget, panel, label);
              await assertNoSidewaysScroll(page, label);
              await page.waitForTimeout(200);
              await page.screenshot({ path: shotPath(name, colorScheme, phone), fullPage: true });
              assertClean(problems, label);
            } finally {
              await context.close();
            }
          },
        );
      }
    }
  }

  test(
    "the browser's samples are the CLI's: same weights, sampler, seed, same distance",
    { timeout: 120_000 },
    async (t) => {
      if (!existsSync(CLI)) return t.skip("target/release/mlplay not built");
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=diffusion");
        const widget = page.locator("ml-diffusion");
        await waitForState(widget, allDone, null, { timeout: 90_000 });
        const s = await stateOf(widget);
        const [run] = s.data.runs;
        const c = cli("moons-ddpm.bin", "ddim", run.steps, run.particles, s.params.seed);
        // The same f32 arithmetic natively and in wasm: the same samples, so the same distance.
        assert.equal(run.swd, c.swd, "DDIM samples: browser SW == CLI SW");
        assertClean(problems, "cli");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "the t slider moves the cloud as the closed form says, and the pixels",
    { timeout: 90_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=diffusion");
        const widget = page.locator("ml-diffusion");
        const before = await stateOf(widget);
        const hash = await canvasHash(widget, 0);
        await pressOnSlider(widget, "t", "End", 1);
        await waitForState(widget, (s) => s.params.t === 1000);
        const s = await stateOf(widget);
        // Linear schedule, T = 1000: alpha_bar_T = 4.0358e-5 (tests/diffusion_core.rs derives it).
        assert.ok(Math.abs(s.data.alpha_bar_linear - 4.0358e-5) < 1e-8, String(s.data.alpha_bar_linear));
        // The cloud is then nearly the noise: its mean moves from the data's toward 0.
        assert.notDeepEqual(s.data.cloud_mean, before.data.cloud_mean);
        assert.ok(Math.hypot(...s.data.cloud_mean) < 0.08, JSON.stringify(s.data.cloud_mean));
        assert.notEqual(await canvasHashChange(widget, 0, hash), hash, "panel 0 pixels change");
        assertClean(problems, "t slider");
      } finally {
        await context.close();
      }
    },
  );

  for (const name of ["diffusion", "flow-matching"]) {
    test(`Train trains in the page and replaces the weights (${name})`, { timeout: 120_000 }, async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, `embed.html?w=${name}&train_steps=100&particles=300`);
        const widget = page.locator(`ml-${name}`);
        await waitForState(widget, allDone, null, { timeout: 90_000 });
        const lossHash = await canvasHash(widget, 3);
        await widget.evaluate((el) => el.play());
        await waitForState(
          widget,
          (s) => s.data.models.every((m) => m.source.startsWith("trained in the page")),
          null,
          { timeout: 90_000 },
        );
        await waitForState(widget, allDone, null, { timeout: 60_000 });
        const s = await stateOf(widget);
        for (const t of s.data.training) {
          assert.equal(t.step, 100);
          assert.ok(Number.isFinite(t.loss), JSON.stringify(t));
        }
        assert.notEqual(await canvasHashChange(widget, 3, lossHash), lossHash, "loss panel drawn");
        assertClean(problems, `train ${name}`);
      } finally {
        await context.close();
      }
    });
  }

  test(
    "drawn points: the pointer draws them on panel 0, the text box lists them",
    { timeout: 90_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=diffusion&dataset=drawn");
        const widget = page.locator("ml-diffusion");
        let s = await stateOf(widget);
        assert.equal(s.data.drawn_points, 0);
        assert.equal(s.data.runs.length, 0, "no default weights for drawn data");
        const canvas = widget.locator('canvas[data-panel="0"]');
        await canvas.scrollIntoViewIfNeeded();
        const box = await canvas.boundingBox();
        const [cx, cy] = [box.x + box.width / 2, box.y + box.height / 2];
        await page.mouse.move(cx - 60, cy);
        await page.mouse.down();
        for (let i = 0; i <= 12; i++) await page.mouse.move(cx - 60 + 10 * i, cy - 20 + 3 * i);
        await page.mouse.up();
        await waitForState(widget, (s) => s.data.drawn_points >= 5);
        s = await stateOf(widget);
        assert.equal(s.data.dataset, "drawn");
        const text = await widget.evaluate((el) => el.text);
        assert.equal(text.split(";").length, s.data.drawn_points);
        const r = await widget.evaluate((el) => el.setText("0,0;1,1;-1,1"));
        assert.ok(r.ok, r.message);
        await waitForState(widget, (s) => s.data.drawn_points === 3);
        assertClean(problems, "drawn");
      } finally {
        await context.close();
      }
    },
  );
});
