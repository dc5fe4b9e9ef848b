// Moving a slider with the keyboard recomputes the plotted data and redraws the canvases.
// Every expected number is derived here from PPO's formulas (see _support.mjs), not read
// back from the widget: L_clip(1.5) for A = 1 is min(1.5, 1 + eps), the whole curve is
// checked point by point, and panel 1's K-epoch update is re-run in JavaScript.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PAGES,
  PPO_DEFAULTS,
  approx,
  assertClean,
  assertCurve,
  assertTrajectory,
  canvasHash,
  canvasHashChange,
  gotoReady,
  lClip,
  openBrowser,
  openPage,
  ppoUpdate,
  pressOnSlider,
  readoutOf,
  stateOf,
  waitForState,
} from "./_support.mjs";

const AT_1_5 = 150; // index of r = 1.5 on the 201-point grid over [0, 2]

/** Panel 1's data against the re-derived update, for the params in `state`. */
function assertUpdate(state, what) {
  const { eps, lr, epochs, actions } = state.params;
  const { pi_old: piOld, advantages } = state.data.update;
  assert.equal(piOld.length, actions, `${what}: pi_old has one entry per action`);
  assert.equal(advantages.length, actions, `${what}: one advantage per action`);
  approx(
    piOld.reduce((a, b) => a + b, 0),
    1,
    1e-9,
    `${what}: pi_old sums to 1`,
  );
  const clipped = ppoUpdate(piOld, advantages, eps, lr, epochs);
  const unclipped = ppoUpdate(piOld, advantages, null, lr, epochs);
  assertTrajectory(state.data.update.clipped, clipped, `${what}: clipped run`);
  assertTrajectory(state.data.update.unclipped, unclipped, `${what}: unclipped run`);
  for (const r of state.data.update.clipped.ratios[0]) approx(r, 1, 1e-9, `${what}: epoch 0 ratio`);
  return { clipped, unclipped };
}

const maxDeviation = (ratios) => Math.max(...ratios.at(-1).map((r) => Math.abs(r - 1)));

describe("keyboard on a slider", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test(
    "ArrowRight on eps: data follows the formula, readout and canvases update",
    { timeout: 60_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, PAGES.index);
        const widget = page.locator("ml-ppo-clip").first();

        const before = await stateOf(widget);
        assert.deepEqual(before.params, PPO_DEFAULTS, "index.html's widget starts at the defaults");
        approx(before.data.curve.clipped[AT_1_5], 1.2, 1e-12, "L_clip(1.5) with A = 1, eps = 0.2");
        assertCurve(before.data.curve, 1, 0.2, "curve before");
        assertCurve(before.data.curve_flipped, -1, 0.2, "flipped curve before");
        const { clipped, unclipped } = assertUpdate(before, "before");
        // The point of panel 1: with the defaults the clipped ratios stay near the band while
        // the unclipped ones move further.
        assert.ok(
          maxDeviation(clipped.ratios) < maxDeviation(unclipped.ratios),
          `clipped run moves less (${maxDeviation(clipped.ratios)}) than unclipped (${maxDeviation(unclipped.ratios)})`,
        );
        assert.equal(await readoutOf(widget, "eps"), "0.20");

        const hash0 = await canvasHash(widget, 0);
        const hash1 = await canvasHash(widget, 1);

        const slider = await pressOnSlider(widget, "eps", "ArrowRight", 3);
        assert.equal(await slider.evaluate((i) => i === i.getRootNode().activeElement), true);
        const eps = 0.23;
        await waitForState(widget, (s, eps) => Math.abs(s.params.eps - eps) < 1e-9, eps);
        assert.equal(await slider.inputValue(), "0.23");

        const after = await stateOf(widget);
        approx(after.params.eps, eps, 1e-12, "eps after three steps of 0.01");
        assert.deepEqual({ ...after.params, eps: 0.2 }, PPO_DEFAULTS, "only eps changed");
        approx(after.data.curve.clipped[AT_1_5], Math.min(1.5 * 1, (1 + eps) * 1), 1e-12, "L_clip(1.5)");
        approx(after.data.curve.clipped[AT_1_5], 1.23, 1e-12, "L_clip(1.5) = 1 + eps");
        assertCurve(after.data.curve, 1, eps, "curve after");
        assertCurve(after.data.curve_flipped, -1, eps, "flipped curve after");
        // For -A the flat part is left of 1 - eps: L_clip(0.5) = (1 - eps)(-1).
        approx(after.data.curve_flipped.clipped[50], lClip(0.5, -1, eps), 1e-12, "L_clip(0.5) for -A");
        approx(after.data.curve_flipped.clipped[50], -(1 - eps), 1e-12, "L_clip(0.5) for -A");
        assertUpdate(after, "after");
        assert.equal(await readoutOf(widget, "eps"), "0.23");

        const hash0After = await canvasHashChange(widget, 0, hash0);
        const hash1After = await canvasHashChange(widget, 1, hash1);
        assert.notEqual(hash0After, hash0, "panel 0's pixels change with eps");
        assert.notEqual(hash1After, hash1, "panel 1's pixels change with eps");

        // And back: ArrowLeft three times restores the first picture exactly.
        await pressOnSlider(widget, "eps", "ArrowLeft", 3);
        await waitForState(widget, (s) => Math.abs(s.params.eps - 0.2) < 1e-9);
        assert.deepEqual((await stateOf(widget)).data, before.data, "data is a function of params");
        assert.equal(await canvasHashChange(widget, 0, hash0After), hash0, "same params, same pixels");

        assertClean(problems, "slider test");
      } finally {
        await context.close();
      }
    },
  );

  test("keyboard on adv, lr and epochs: data still follows the formulas", { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, PAGES.index);
      const widget = page.locator("ml-ppo-clip").first();

      // adv: 1 -> -1 with twenty steps of 0.1 down (Home/End are exercised below).
      await pressOnSlider(widget, "adv", "ArrowLeft", 20);
      await waitForState(widget, (s) => Math.abs(s.params.adv + 1) < 1e-9);
      let s = await stateOf(widget);
      assertCurve(s.data.curve, -1, 0.2, "curve for A = -1");
      assertCurve(s.data.curve_flipped, 1, 0.2, "flipped curve for A = -1");

      // lr: End jumps to the maximum, 5.
      await pressOnSlider(widget, "lr", "End", 1);
      await waitForState(widget, (s) => Math.abs(s.params.lr - 5) < 1e-9);
      // epochs: 20 -> 25.
      await pressOnSlider(widget, "epochs", "ArrowRight", 5);
      await waitForState(widget, (s) => s.params.epochs === 25);
      s = await stateOf(widget);
      assert.equal(s.data.update.clipped.ratios.length, 26, "K = 25 epochs plus the start");
      assertUpdate(s, "lr = 5, K = 25");
      assert.equal(await readoutOf(widget, "epochs"), "25");

      // actions: Home jumps to the minimum, 2.
      await pressOnSlider(widget, "actions", "Home", 1);
      await waitForState(widget, (s) => s.params.actions === 2);
      assertUpdate(await stateOf(widget), "two actions");

      assertClean(problems, "adv/lr/epochs test");
    } finally {
      await context.close();
    }
  });
});
