// The sample course page has two <ml-ppo-clip> instances in its prose. They start from
// their own attributes and never affect each other.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PAGES,
  PPO_DEFAULTS,
  PPO_KEYS,
  approx,
  assertClean,
  assertCurve,
  canvasHash,
  canvasHashChange,
  gotoReady,
  lClip,
  openBrowser,
  openPage,
  pressOnSlider,
  stateOf,
  waitForState,
} from "./_support.mjs";

describe("course page: two independent widgets", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test(
    "initial params match the attributes; changes stay in their own widget",
    { timeout: 90_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        assert.equal(await gotoReady(page, PAGES.course), 2);
        const [first, second] = [page.locator("ml-ppo-clip").nth(0), page.locator("ml-ppo-clip").nth(1)];

        // What the page's markup says, read from the DOM so the test follows the page.
        const attrs = await page.$$eval("ml-ppo-clip", (els) =>
          els.map((el) => Object.fromEntries([...el.attributes].map((a) => [a.name, a.value]))),
        );
        assert.equal(attrs[0].eps, "0.1");
        assert.equal(attrs[1].eps, "0.3");
        assert.equal(attrs[1].adv, "-1");
        for (const [i, w] of [first, second].entries()) {
          const expected = { ...PPO_DEFAULTS };
          for (const key of PPO_KEYS) if (key in attrs[i]) expected[key] = Number(attrs[i][key]);
          const s = await stateOf(w);
          assert.deepEqual(s.params, expected, `widget ${i}'s params are its attributes`);
          assert.deepEqual(s.notices, [], `widget ${i} has no notices`);
          assertCurve(s.data.curve, expected.adv, expected.eps, `widget ${i} curve`);
        }

        // The first hides everything but eps and adv; the second hides nothing.
        const hidden = (attrs[0].hide || "")
          .split(",")
          .map((k) => k.trim())
          .filter(Boolean);
        assert.deepEqual(hidden.sort(), ["actions", "epochs", "lr", "seed"]);
        for (const key of PPO_KEYS) {
          const slider = (w) => w.locator(`input[type="range"][data-key="${key}"]`);
          assert.equal(await slider(first).isVisible(), !hidden.includes(key), `first: ${key} slider`);
          assert.equal(await slider(second).isVisible(), true, `second: ${key} slider`);
        }

        // Change the second by keyboard and by property; the first must not move.
        const firstBefore = await stateOf(first);
        await first.scrollIntoViewIfNeeded();
        const firstPixels = await canvasHash(first, 0);
        await second.scrollIntoViewIfNeeded();
        const secondPixels = await canvasHash(second, 0);
        await pressOnSlider(second, "eps", "ArrowLeft", 2); // 0.3 -> 0.28
        await second.evaluate((el) => {
          el.seed = 77;
        });
        await waitForState(second, (s) => Math.abs(s.params.eps - 0.28) < 1e-9 && s.params.seed === 77);
        const secondAfter = await stateOf(second);
        // A = -1: the flat part is left of 1 - eps, so L_clip(0.5) = -(1 - 0.28) = -0.72.
        approx(secondAfter.data.curve.clipped[50], lClip(0.5, -1, 0.28), 1e-12, "second: L_clip(0.5)");
        approx(secondAfter.data.curve.clipped[50], -0.72, 1e-12, "second: L_clip(0.5)");
        assert.notEqual(await canvasHashChange(second, 0, secondPixels), secondPixels);
        assert.deepEqual(await stateOf(first), firstBefore, "first widget untouched by the second");
        await first.scrollIntoViewIfNeeded();
        await page.waitForTimeout(200);
        assert.equal(await canvasHash(first, 0), firstPixels, "first widget's pixels untouched");

        // And the other way round.
        await pressOnSlider(first, "eps", "ArrowRight", 1); // 0.1 -> 0.11
        await waitForState(first, (s) => Math.abs(s.params.eps - 0.11) < 1e-9);
        approx(
          (await stateOf(first)).data.curve.clipped[150],
          lClip(1.5, 1, 0.11),
          1e-12,
          "first: L_clip(1.5)",
        );
        assert.deepEqual(await stateOf(second), secondAfter, "second widget untouched by the first");

        // Share links differ and each carries its own widget's state.
        const urls = await page.$$eval("ml-ppo-clip", (els) => els.map((el) => el.shareUrl));
        const q = urls.map((u) => new URL(u).searchParams);
        assert.equal(Number(q[0].get("eps")), 0.11);
        assert.equal(Number(q[1].get("eps")), 0.28);
        assert.equal(Number(q[1].get("seed")), 77);

        // Reset returns each figure to its author's attributes, not to the global defaults.
        await second.locator('[data-action="reset"]').click();
        await waitForState(second, (s, seed) => s.params.seed === seed, PPO_DEFAULTS.seed);
        const reset = (await stateOf(second)).params;
        assert.deepEqual(reset, { ...PPO_DEFAULTS, eps: 0.3, adv: -1 }, "second reset to its markup");
        assert.equal((await stateOf(first)).params.eps, 0.11, "first untouched by the second's reset");

        assertClean(problems, "course page");
      } finally {
        await context.close();
      }
    },
  );
});
