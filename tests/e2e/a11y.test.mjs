// axe-core on every page, light and dark, with the widgets ready (axe looks into their
// open shadow roots): no serious or critical violations.

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import { PAGES, gotoReady, openBrowser, openPage, pageUrl } from "./_support.mjs";

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve("axe-core/axe.min.js");

function describeViolations(violations) {
  return violations
    .map(
      (v) =>
        `[${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n` +
        v.nodes
          .slice(0, 5)
          .map((n) => `    ${JSON.stringify(n.target)} ${n.failureSummary?.split("\n").join(" ")}`)
          .join("\n"),
    )
    .join("\n");
}

describe("accessibility (axe-core)", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const colorScheme of ["light", "dark"]) {
    for (const [name, path] of Object.entries({ ...PAGES, unknown: "embed.html?w=nope" })) {
      test(`${name}, ${colorScheme}: no serious or critical violations`, { timeout: 90_000 }, async (t) => {
        const { context, page } = await openPage(browser, { colorScheme });
        try {
          if (name === "unknown") {
            await page.goto(pageUrl(path));
            await page.getByText(/nope/).first().waitFor();
          } else {
            await gotoReady(page, path);
          }
          // Open the share panel of the first widget too, so its fields are checked.
          const share = page.locator('ml-ppo-clip [data-action="share"]').first();
          if (await share.count()) await share.click();

          await page.addScriptTag({ path: AXE_PATH });
          const results = await page.evaluate(() =>
            window.axe.run(document, {
              resultTypes: ["violations"],
              runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
            }),
          );
          const bad = results.violations.filter((v) => ["serious", "critical"].includes(v.impact));
          const minor = results.violations.filter((v) => !bad.includes(v));
          if (minor.length) t.diagnostic(`minor/moderate:\n${describeViolations(minor)}`);
          assert.equal(bad.length, 0, `${name} (${colorScheme}):\n${describeViolations(bad)}`);
        } finally {
          await context.close();
        }
      });
    }
  }
});
