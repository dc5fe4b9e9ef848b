// Screenshots of the site's pages, light and dark, desktop (1200 px) and phone (390 px),
// to target/e2e-shots/<name>-<webgpu|cpu>-<light|dark>[-phone].png. At phone width nothing
// may overflow sideways (the page must not scroll horizontally).

import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { PAGES, gotoReady, openBrowser, openPage, shotPath } from "./_support.mjs";

const SHOTS = { index: PAGES.index, course: PAGES.course, guide: PAGES.guide, embed: PAGES.embed };

describe("screenshots", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const [name, path] of Object.entries(SHOTS)) {
    for (const colorScheme of ["light", "dark"]) {
      for (const phone of [false, true]) {
        const label = `${name} ${colorScheme} ${phone ? "phone 390px" : "desktop 1200px"}`;
        test(label, { timeout: 90_000 }, async () => {
          const { context, page } = await openPage(browser, { colorScheme, phone });
          try {
            await gotoReady(page, path);
            await page.evaluate(() => document.fonts.ready);
            // Let the last resize-triggered redraw land.
            await page.waitForTimeout(250);
            const overflow = await page.evaluate(() => ({
              scroll: document.documentElement.scrollWidth,
              view: document.documentElement.clientWidth,
              wide: [...document.querySelectorAll("body *")]
                .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                .filter((e) => !e.closest("pre, .table-wrap, .equation, .sr-only"))
                .slice(0, 5)
                .map((e) => e.localName + (e.className ? `.${e.className}` : "")),
            }));
            assert.ok(
              overflow.scroll <= overflow.view,
              `${label}: page is ${overflow.scroll}px wide in a ${overflow.view}px view; ` +
                `too wide: ${overflow.wide.join(", ")}`,
            );
            const file = shotPath(name, colorScheme, phone);
            await page.screenshot({ path: file, fullPage: true });
            assert.ok(existsSync(file) && statSync(file).size > 10_000, `${file} written`);
          } finally {
            await context.close();
          }
        });
      }
    }
  }
});
