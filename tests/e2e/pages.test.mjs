// Every page of the site loads cleanly: no console errors, no uncaught exceptions, no
// failed requests, nothing fetched from another origin; every widget on it becomes ready
// and draws both panels; every same-site link on it leads somewhere.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PAGES, assertClean, assertDrawn, gotoReady, openBrowser, openPage, pageUrl } from "./_support.mjs";

const EXPECTED = {
  // The gallery has one card per widget in the registry.
  index: { widgets: "all", title: /^mlplay — the mathematics of modern machine learning, live$/ },
  guide: { widgets: 1, title: /embed/i },
  course: { widgets: 2, title: /Lecture 7: Proximal Policy Optimization/ },
  embed: { widgets: 1, title: /PPO/ },
};

describe("pages load cleanly", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const [name, path] of Object.entries(PAGES)) {
    test(`${name} (${path}): no errors, widgets ready and drawn`, { timeout: 90_000 }, async (t) => {
      const { context, page, problems, warnings } = await openPage(browser);
      try {
        const count = await gotoReady(page, path);
        const expected =
          EXPECTED[name].widgets === "all"
            ? await page.evaluate(async () => (await import("./mlplay.js")).widgets.length)
            : EXPECTED[name].widgets;
        assert.equal(count, expected, "number of widgets on the page");
        assert.match(await page.title(), EXPECTED[name].title);

        // Every widget element on the page, whatever its kind, and every panel it has.
        const tags = await page.evaluate(() =>
          [...document.querySelectorAll("*")].map((e) => e.localName).filter((t) => t.startsWith("ml-")),
        );
        for (let i = 0; i < count; i++) {
          const w = page.locator(tags[i]).nth(tags.slice(0, i).filter((t) => t === tags[i]).length);
          await w.scrollIntoViewIfNeeded();
          const panels = await w.evaluate(
            (el) => el.shadowRoot.querySelectorAll("canvas[data-panel]").length,
          );
          assert.ok(panels >= 1, `${name} widget ${i} (<${tags[i]}>) has panels`);
          for (let panel = 0; panel < panels; panel++) await assertDrawn(w, panel, `${name} widget ${i}`);
          assert.equal(
            await w.locator(".error").isVisible(),
            false,
            `${name} widget ${i} shows an internal error`,
          );
        }

        assert.equal(await page.locator("h1").count(), 1, "exactly one <h1>");
        // Give late requests (images, lazy work) a moment to fail if they are going to.
        await page.waitForTimeout(300);
        if (warnings.length) t.diagnostic(warnings.join("\n"));
        assertClean(problems, name);
      } finally {
        await context.close();
      }
    });
  }

  test("every same-site link on the site's own pages resolves", { timeout: 60_000 }, async () => {
    const { context, page } = await openPage(browser);
    const broken = [];
    try {
      const checked = new Set();
      for (const path of [PAGES.index, PAGES.guide, PAGES.course]) {
        await page.goto(pageUrl(path));
        const hrefs = await page.$$eval("a[href]", (as) => as.map((a) => a.href));
        for (const href of hrefs) {
          const url = new URL(href);
          url.hash = "";
          if (url.origin !== new URL(pageUrl("")).origin || checked.has(url.href)) continue;
          checked.add(url.href);
          const res = await fetch(url);
          if (!res.ok) broken.push(`${path} -> ${url.href}: HTTP ${res.status}`);
        }
        // In-page anchors must point at an element that exists.
        const missing = await page.$$eval('a[href^="#"]', (as) =>
          as.map((a) => a.getAttribute("href").slice(1)).filter((id) => id && !document.getElementById(id)),
        );
        for (const id of missing) broken.push(`${path}: #${id} has no target`);
      }
      assert.ok(checked.size >= 4, `checked ${checked.size} links`);
    } finally {
      await context.close();
    }
    assert.deepEqual(broken, []);
  });
});
