// A share link reproduces a widget exactly: the same parameters and the same plotted data
// when opened in a fresh page. The Share and Embed buttons show that link and snippets.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PAGES,
  assertClean,
  assertDrawn,
  gotoReady,
  openBrowser,
  openPage,
  pageUrl,
  pressOnSlider,
  stateOf,
  waitForState,
  widgetsReady,
} from "./_support.mjs";

const TARGET = { eps: 0.35, adv: -0.5, lr: 1.25, epochs: 30, actions: 6, seed: 42 };

describe("share links", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test("el.shareUrl opened in a new page reproduces params and data", { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, PAGES.index);
      const widget = page.locator("ml-ppo-clip").first();

      // Through the JS API, numbers and strings alike, then one slider by keyboard.
      await widget.evaluate((el, t) => {
        el.eps = t.eps;
        el.adv = String(t.adv);
        el.lr = t.lr;
        el.epochs = String(t.epochs);
        el.seed = t.seed;
      }, TARGET);
      await pressOnSlider(widget, "actions", "ArrowRight", 2);
      await waitForState(widget, (s, t) => JSON.stringify(s.params) === JSON.stringify(t), TARGET);

      const state = await stateOf(widget);
      assert.deepEqual(state.params, TARGET);
      assert.deepEqual(state.notices, []);
      assert.equal(state.widget, "ppo-clip");

      const shareUrl = await widget.evaluate((el) => el.shareUrl);
      const url = new URL(shareUrl); // throws unless absolute
      assert.equal(url.origin + url.pathname, pageUrl("embed.html"), "points at embed.html");
      assert.equal(url.searchParams.get("w"), "ppo-clip");
      for (const [key, value] of Object.entries(TARGET)) {
        assert.equal(Number(url.searchParams.get(key)), value, `${key} in the share URL`);
      }

      const { context: ctx2, page: page2, problems: problems2 } = await openPage(browser);
      try {
        await page2.goto(shareUrl);
        assert.equal(await widgetsReady(page2), 1);
        const copy = page2.locator("ml-ppo-clip");
        const reopened = await stateOf(copy);
        assert.deepEqual(reopened.params, state.params, "same params");
        assert.deepEqual(reopened.data, state.data, "same data, to the last bit");
        assert.deepEqual(reopened.notices, [], "a share link raises no notices");
        assert.equal(await copy.evaluate((el) => el.shareUrl), shareUrl, "and shares itself");
        await assertDrawn(copy, 0, "reopened");
        await assertDrawn(copy, 1, "reopened");
        assertClean(problems2, "share URL page");
      } finally {
        await ctx2.close();
      }
      assertClean(problems, "index page");
    } finally {
      await context.close();
    }
  });

  test("Share and Embed buttons show the link and the snippets", { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, PAGES.index);
      const widget = page.locator("ml-ppo-clip").first();
      await widget.evaluate((el) => {
        el.eps = 0.15;
        el.seed = 11;
      });
      await waitForState(widget, (s) => s.params.eps === 0.15 && s.params.seed === 11);
      const shareUrl = await widget.evaluate((el) => el.shareUrl);
      const snippets = await widget.evaluate((el) => el.embedSnippets);

      const panel = widget.locator(".share-panel");
      await widget.locator('[data-action="share"]').click();
      await panel.waitFor({ state: "visible" });
      const shown = await panel.locator("input, textarea").evaluateAll((fs) => fs.map((f) => f.value));
      assert.ok(shown.includes(shareUrl), `share panel shows ${shareUrl}; it has ${JSON.stringify(shown)}`);
      assert.equal(await widget.locator('[data-action="share"]').getAttribute("aria-expanded"), "true");

      await widget.locator('[data-action="embed"]').click();
      await panel.waitFor({ state: "visible" });
      const embedFields = await panel.locator("input, textarea").evaluateAll((fs) => fs.map((f) => f.value));
      assert.ok(embedFields.includes(snippets.script), "embed panel shows the script snippet");
      assert.ok(embedFields.includes(snippets.iframe), "embed panel shows the iframe snippet");

      assert.match(snippets.script, /<script type="module" src="[^"]*mlplay\.js"><\/script>/);
      assert.match(snippets.script, /<ml-ppo-clip\b[^>]*\beps="0\.15"/);
      assert.match(snippets.script, /<ml-ppo-clip\b[^>]*\bseed="11"/);
      assert.match(snippets.iframe, /^<iframe\b[^>]*\bsrc="[^"]*embed\.html\?[^"]*"/);
      assert.match(snippets.iframe, /\btitle="[^"]+"/, "the iframe has a title");
      const src = snippets.iframe.match(/src="([^"]*)"/)[1].replaceAll("&amp;", "&");
      assert.equal(src, shareUrl, "the iframe shows the shared state");

      // The script snippet, pasted into a page of the same site, gives the same state.
      const script = snippets.script.match(/<ml-ppo-clip[^>]*><\/ml-ppo-clip>/)[0];
      await page.evaluate((html) => {
        document.querySelector("main").insertAdjacentHTML("beforeend", html);
      }, script);
      const pasted = page.locator("ml-ppo-clip").nth(1);
      await pasted.scrollIntoViewIfNeeded();
      await pasted.evaluate((el) => el.ready);
      assert.deepEqual((await stateOf(pasted)).data, (await stateOf(widget)).data);

      assertClean(problems, "share buttons");
    } finally {
      await context.close();
    }
  });
});
