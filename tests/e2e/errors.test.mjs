// An internal error in one widget shows a message in that widget and the console, and the
// rest of the page keeps working: never a blank page, never a silent failure.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PAGES,
  assertDrawn,
  canvasHash,
  canvasHashChange,
  gotoReady,
  openBrowser,
  openPage,
  pressOnSlider,
  stateOf,
  waitForState,
} from "./_support.mjs";

describe("internal errors stay inside their widget", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test(
    "a widget whose canvas cannot be drawn says so; its neighbour still works",
    { timeout: 60_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        assert.equal(await gotoReady(page, PAGES.course), 2);
        const [first, second] = [page.locator("ml-ppo-clip").nth(0), page.locator("ml-ppo-clip").nth(1)];
        // Swap the first widget's canvas for one that already holds another kind of context,
        // so the Rust drawing code gets no 2D context and fails on the next redraw.
        await first.evaluate((el) => {
          const old = el.shadowRoot.querySelector('canvas[data-panel="0"]');
          const broken = old.cloneNode();
          broken.getContext("bitmaprenderer");
          old.replaceWith(broken);
          el.eps = 0.3;
        });
        const alert = first.locator('.error[role="alert"]');
        await alert.waitFor({ state: "visible", timeout: 5000 });
        assert.match(await alert.textContent(), /internal error/i);
        assert.match(await alert.textContent(), /2d canvas context/);
        assert.ok(
          problems.some((p) => p.startsWith("console.error") && p.includes("ml-ppo-clip")),
          `the error is also in the console: ${problems.join("; ")}`,
        );
        // The broken widget's other panel keeps its last drawing: nothing went blank.
        await assertDrawn(first, 1, "broken widget's second panel");

        // The neighbour is untouched and still responds to the keyboard.
        await second.scrollIntoViewIfNeeded();
        const before = await canvasHash(second, 0);
        await pressOnSlider(second, "eps", "ArrowRight", 2); // 0.3 -> 0.32
        await waitForState(second, (s) => Math.abs(s.params.eps - 0.32) < 1e-9);
        assert.notEqual(await canvasHashChange(second, 0, before), before);
        assert.equal((await stateOf(second)).params.adv, -1);
        assert.equal(await second.locator(".error").isVisible(), false);
      } finally {
        await context.close();
      }
    },
  );
});
