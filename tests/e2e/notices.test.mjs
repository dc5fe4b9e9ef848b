// Values a widget cannot use are replaced, and a notice says which key, what was wrong and
// what is used instead; the widget still draws. Unknown widgets get a clear message.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PAGES,
  PPO_DEFAULTS,
  assertClean,
  assertCurve,
  assertDrawn,
  gotoReady,
  openBrowser,
  openPage,
  pageUrl,
  stateOf,
  waitForState,
} from "./_support.mjs";

/** The notices shown in a widget's shadow DOM, and the container's role. */
function shownNotices(widget) {
  return widget.evaluate((el) => {
    const box = el.shadowRoot.querySelector(".notices");
    return {
      role: box?.getAttribute("role"),
      visible: !!box && box.getClientRects().length > 0,
      texts: [...el.shadowRoot.querySelectorAll(".notices .notice")].map((n) => n.textContent.trim()),
    };
  });
}

describe("bad values show notices and fall back", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test(
    "embed URL: eps=7 is clamped, adv=banana defaults, epochs=2.5 is rounded",
    { timeout: 60_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=ppo-clip&eps=7&adv=banana&epochs=2.5");
        const widget = page.locator("ml-ppo-clip");
        const s = await stateOf(widget);
        assert.deepEqual(s.params, { ...PPO_DEFAULTS, eps: 0.5, adv: 1, epochs: 3 });
        assertCurve(s.data.curve, 1, 0.5, "curve with the clamped eps");
        assert.equal(s.data.update.clipped.ratios.length, 4, "K = 3 epochs plus the start");

        const keys = s.notices.map((n) => n.key).sort();
        assert.deepEqual(keys, ["adv", "epochs", "eps"], "one notice per bad key");
        const byKey = Object.fromEntries(s.notices.map((n) => [n.key, n.message]));
        assert.match(byKey.eps, /\beps\b/);
        assert.match(byKey.eps, /0\.50?\b/, "says the value used");
        assert.match(byKey.eps, /max/i, "says why");
        assert.match(byKey.adv, /\badv\b/);
        assert.match(byKey.adv, /banana/);
        assert.match(byKey.adv, /default/i);
        assert.match(byKey.epochs, /\bepochs\b/);
        assert.match(byKey.epochs, /\b3\b/);

        const shown = await shownNotices(widget);
        assert.equal(shown.role, "status", "notices are announced politely");
        assert.equal(shown.visible, true, "notices are visible");
        assert.equal(shown.texts.length, 3);
        for (const key of ["eps", "adv", "epochs"]) {
          assert.ok(
            shown.texts.some((t) => new RegExp(`\\b${key}\\b`).test(t)),
            `a visible notice names ${key}: ${JSON.stringify(shown.texts)}`,
          );
        }
        assert.ok(
          shown.texts.some((t) => t.includes("Clip range ε (eps): 7 is above the maximum; clamped to 0.50")),
          `the eps notice reads as documented: ${JSON.stringify(shown.texts)}`,
        );

        await assertDrawn(widget, 0, "with notices");
        await assertDrawn(widget, 1, "with notices");
        assertClean(problems, "embed page with bad params");
      } finally {
        await context.close();
      }
    },
  );

  test("bad attributes on an element; bad values through properties", { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, PAGES.index);
      await page.evaluate(() => {
        document
          .querySelector("main")
          .insertAdjacentHTML(
            "beforeend",
            '<ml-ppo-clip id="bad" eps="-1" actions="nine" seed="12.7" lr="0.3"></ml-ppo-clip>',
          );
      });
      const widget = page.locator("#bad");
      await widget.scrollIntoViewIfNeeded();
      await widget.evaluate((el) => el.ready);
      let s = await stateOf(widget);
      assert.deepEqual(s.params, { ...PPO_DEFAULTS, eps: 0.01, actions: 4, seed: 13, lr: 0.3 });
      assert.deepEqual(s.notices.map((n) => n.key).sort(), ["actions", "eps", "seed"]);
      const texts = (await shownNotices(widget)).texts;
      for (const key of ["eps", "actions", "seed"]) {
        assert.ok(
          texts.some((t) => t.includes(`(${key})`)),
          `notice names ${key}: ${texts}`,
        );
      }
      await assertDrawn(widget, 0, "bad attributes");

      // A string that is not a number, through the property: a notice, and a valid value.
      await widget.evaluate((el) => {
        el.eps = "nope";
      });
      await waitForState(widget, (s) => s.notices.some((n) => n.key === "eps" && /nope/.test(n.message)));
      const eps = await widget.evaluate((el) => el.eps);
      assert.equal(typeof eps, "number");
      assert.ok(eps >= 0.01 && eps <= 0.5, `el.eps = ${eps} is in range`);
      s = await stateOf(widget);
      assert.equal(s.params.eps, eps, "the property and the state agree");
      assertCurve(s.data.curve, 1, eps, "curve after a bad eps");
      assert.ok((await shownNotices(widget)).texts.some((t) => /\beps\b/.test(t) && /nope/.test(t)));

      // A numeric string is a valid value, and clears that key's notice.
      await widget.evaluate((el) => {
        el.eps = "0.15";
      });
      await waitForState(widget, (s) => s.params.eps === 0.15);
      assert.equal(await widget.evaluate((el) => el.eps), 0.15);
      s = await stateOf(widget);
      assert.equal(
        s.notices.some((n) => n.key === "eps"),
        false,
        "a good value clears the eps notice",
      );

      assertClean(problems, "bad attributes");
    } finally {
      await context.close();
    }
  });

  test(
    "embed.html?w=nope names the problem and lists the widgets, without errors",
    { timeout: 30_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await page.goto(pageUrl("embed.html?w=nope"));
        const message = page.getByText(/nope/);
        await message.first().waitFor({ state: "visible" });
        const body = await page.locator("body").innerText();
        assert.match(body, /"?nope"?/);
        assert.match(body, /ppo-clip/, "lists the widgets there are");
        const link = page.locator('a[href*="w=ppo-clip"]');
        assert.ok((await link.count()) >= 1, "links to the real widget");
        assert.equal(await page.locator("ml-ppo-clip").count(), 0, "no widget is made up");
        await page.waitForTimeout(300);
        assertClean(problems, "unknown widget page");
      } finally {
        await context.close();
      }
    },
  );
});
