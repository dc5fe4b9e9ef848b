// Classroom controls: `hide` hides sliders (values stay), Reset restores the defaults, the
// `change` event carries {key, value, params}, `theme` switches the drawing, and the embed
// guide's live API demo follows the widget.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  PAGES,
  PPO_DEFAULTS,
  PPO_KEYS,
  assertClean,
  assertCurve,
  canvasHash,
  gotoReady,
  lClip,
  openBrowser,
  openPage,
  pressOnSlider,
  readoutOf,
  stateOf,
  waitForState,
} from "./_support.mjs";

/** Adds a widget to the page (the index page loads mlplay.js) and waits for it. */
async function addWidget(page, html) {
  const id = await page.evaluate((html) => {
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const el = holder.firstElementChild;
    el.id ||= `t${Math.random().toString(36).slice(2)}`;
    document.querySelector("main").append(el);
    return el.id;
  }, html);
  const widget = page.locator(`#${id}`);
  await widget.scrollIntoViewIfNeeded();
  await widget.evaluate((el) => el.ready);
  return widget;
}

/** Starts recording the widget's `change` events; returns a function that reads them. */
async function recordChanges(widget) {
  await widget.evaluate((el) => {
    el._changes = [];
    el.addEventListener("change", (e) => el._changes.push(e.detail === undefined ? "no detail" : e.detail));
  });
  return () => widget.evaluate((el) => el._changes);
}

describe("controls", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test('hide="lr,epochs" hides those sliders and keeps their values', { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, PAGES.index);
      const widget = await addWidget(page, '<ml-ppo-clip hide="lr,epochs" lr="2"></ml-ppo-clip>');
      for (const key of PPO_KEYS) {
        const slider = widget.locator(`input[type="range"][data-key="${key}"]`);
        const hidden = key === "lr" || key === "epochs";
        assert.equal(await slider.isVisible(), !hidden, `${key} slider visible: ${!hidden}`);
      }
      const s = await stateOf(widget);
      assert.equal(s.params.lr, 2, "a hidden parameter keeps its attribute value");
      assert.equal(s.params.epochs, 20, "and a hidden default stays the default");

      // Tab order skips the hidden sliders: from eps, Tab goes to adv, then to actions.
      const order = [];
      await widget.locator('input[type="range"][data-key="eps"]').focus();
      for (let i = 0; i < 3; i++) {
        order.push(await widget.evaluate((el) => el.shadowRoot.activeElement?.dataset?.key ?? null));
        await page.keyboard.press("Tab");
      }
      assert.deepEqual(order, ["eps", "adv", "actions"]);

      // Changing `hide` at run time shows them again.
      await widget.evaluate((el) => el.setAttribute("hide", ""));
      assert.equal(await widget.locator('input[data-key="lr"]').isVisible(), true);
      assertClean(problems, "hide");
    } finally {
      await context.close();
    }
  });

  test(
    "change events carry {key, value, params}; Reset restores the defaults",
    { timeout: 60_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, PAGES.index);
        const widget = page.locator("ml-ppo-clip").first();
        const changes = await recordChanges(widget);

        // One key press, one change event.
        await pressOnSlider(widget, "adv", "ArrowLeft", 1);
        await waitForState(widget, (s) => Math.abs(s.params.adv - 0.9) < 1e-9);
        await page.waitForTimeout(100);
        let events = await changes();
        assert.equal(events.length, 1, `one change event per step: ${JSON.stringify(events)}`);
        assert.equal(events[0].key, "adv");
        assert.ok(Math.abs(events[0].value - 0.9) < 1e-9, `value ${events[0].value}`);
        assert.deepEqual(events[0].params, { ...PPO_DEFAULTS, adv: events[0].value });

        // A property set fires one too.
        await widget.evaluate((el) => {
          el.seed = 7;
        });
        await waitForState(widget, (s) => s.params.seed === 7);
        events = await changes();
        assert.equal(events.length, 2);
        assert.deepEqual(events[1], {
          key: "seed",
          value: 7,
          params: { ...PPO_DEFAULTS, adv: events[0].value, seed: 7 },
        });

        // The event reaches listeners outside the element (bubbles out of the page's DOM).
        const bubbled = await page.evaluate(
          () =>
            new Promise((resolve) => {
              document.addEventListener("change", (e) => resolve(e.detail?.key ?? null), { once: true });
              document.querySelector("ml-ppo-clip").epochs = 30;
            }),
        );
        assert.equal(bubbled, "epochs");

        // Reset: every parameter back to its default, sliders and readouts too.
        await widget.locator('[data-action="reset"]').click();
        await waitForState(widget, (s, d) => JSON.stringify(s.params) === JSON.stringify(d), PPO_DEFAULTS);
        const s = await stateOf(widget);
        assert.deepEqual(s.params, PPO_DEFAULTS);
        assertCurve(s.data.curve, 1, 0.2, "curve after reset");
        events = await changes();
        assert.deepEqual(events.at(-1).params, PPO_DEFAULTS, "the reset's change event has the defaults");
        for (const key of PPO_KEYS) {
          const v = await widget.locator(`input[type="range"][data-key="${key}"]`).inputValue();
          assert.equal(Number(v), PPO_DEFAULTS[key], `${key} slider back at its default`);
        }
        assert.equal(await readoutOf(widget, "adv"), "1.0");
        assertClean(problems, "change/reset");
      } finally {
        await context.close();
      }
    },
  );

  test(
    'theme="light" and theme="dark" draw differently, whatever the page scheme',
    { timeout: 60_000 },
    async () => {
      const { context, page, problems } = await openPage(browser, { colorScheme: "dark" });
      try {
        await gotoReady(page, PAGES.index);
        const light = await addWidget(page, '<ml-ppo-clip theme="light"></ml-ppo-clip>');
        const dark = await addWidget(page, '<ml-ppo-clip theme="dark"></ml-ppo-clip>');
        const auto = page.locator("ml-ppo-clip").first(); // auto, and the page is dark
        for (const w of [light, dark, auto]) await w.scrollIntoViewIfNeeded();
        await page.waitForTimeout(200);
        const [hl, hd, ha] = [
          await canvasHash(light, 0),
          await canvasHash(dark, 0),
          await canvasHash(auto, 0),
        ];
        assert.notEqual(hl, hd, "light and dark themes differ");
        const bg = (w) =>
          w.evaluate((el) => getComputedStyle(el.shadowRoot.querySelector(".box") ?? el).backgroundColor);
        const lum = (rgb) => {
          const [r, g, b] = rgb.match(/\d+(\.\d+)?/g).map(Number);
          return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        assert.ok(lum(await bg(light)) > lum(await bg(dark)), "theme=light is lighter than theme=dark");
        // With the same size, auto on a dark page draws what theme="dark" draws.
        const sizes = await Promise.all(
          [dark, auto].map((w) => w.evaluate((el) => el.shadowRoot.querySelector("canvas").width)),
        );
        if (sizes[0] === sizes[1]) assert.equal(ha, hd, "theme=auto follows the dark page");
        assertClean(problems, "themes");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "a widget moved in the page keeps its state and takes values set while detached",
    { timeout: 60_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, PAGES.index);
        const widget = page.locator("ml-ppo-clip").first();
        await pressOnSlider(widget, "seed", "ArrowRight", 2); // seed 3 -> 5, by the slider
        await waitForState(widget, (s) => s.params.seed === 5);

        // Moving the element (remove, insert again) is what frameworks do on re-render.
        const moved = await widget.evaluate(async (el) => {
          const parent = el.parentNode;
          const next = el.nextSibling;
          el.remove();
          parent.insertBefore(el, next);
          await new Promise((r) => setTimeout(r, 300));
          return el.state.params;
        });
        assert.deepEqual(moved, { ...PPO_DEFAULTS, seed: 5 }, "params survive a move");

        // A property set while the element is out of the document must not be lost.
        const detached = await widget.evaluate(async (el) => {
          const parent = el.parentNode;
          const next = el.nextSibling;
          el.remove();
          el.eps = 0.4;
          parent.insertBefore(el, next);
          await new Promise((r) => setTimeout(r, 300));
          return { attribute: el.getAttribute("eps"), property: el.eps, state: el.state.params };
        });
        // Properties do not rewrite the author's markup (Reset returns to the attributes).
        assert.equal(detached.attribute, null);
        assert.equal(
          detached.property,
          0.4,
          `el.eps after setting it while detached: ${JSON.stringify(detached)}`,
        );
        assert.deepEqual(detached.state, { ...PPO_DEFAULTS, seed: 5, eps: 0.4 });
        assertClean(problems, "moved widget");
      } finally {
        await context.close();
      }
    },
  );

  test("export buttons download each panel as PNG, CSV and JSON", { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, PAGES.index);
      const widget = page.locator("ml-ppo-clip").first();
      const state = await stateOf(widget);
      const numbersIn = (value, out = []) => {
        if (typeof value === "number") out.push(value);
        else if (value && typeof value === "object") for (const v of Object.values(value)) numbersIn(v, out);
        return out;
      };
      for (const panel of [0, 1]) {
        const files = {};
        for (const kind of ["png", "csv", "json"]) {
          const button = widget.locator(`[data-export="${kind}"][data-panel="${panel}"]`);
          assert.ok(await button.isVisible(), `panel ${panel} has a ${kind} button`);
          const [download] = await Promise.all([page.waitForEvent("download"), button.click()]);
          const stream = await download.createReadStream();
          const chunks = [];
          for await (const c of stream) chunks.push(c);
          files[kind] = { name: download.suggestedFilename(), bytes: Buffer.concat(chunks) };
          assert.match(files[kind].name, new RegExp(`\\.${kind}$`), `${kind} file name`);
        }
        // PNG: the signature, and a real image.
        assert.deepEqual([...files.png.bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
        assert.ok(files.png.bytes.length > 2000, "PNG is not empty");
        // JSON parses, and holds the panel's plotted numbers.
        const json = JSON.parse(files.json.bytes.toString("utf8"));
        const inJson = new Set(numbersIn(json));
        const expected = panel === 0 ? state.data.curve.clipped : state.data.update.clipped.ratios.flat();
        const missing = expected.filter((v) => !inJson.has(v));
        assert.equal(missing.length, 0, `panel ${panel} JSON lacks ${missing.length} plotted values`);
        // CSV: a header and one row per plotted point, same number of fields on every row.
        const rows = files.csv.bytes.toString("utf8").trim().split(/\r?\n/);
        const minRows = panel === 0 ? 201 : state.params.epochs + 1;
        assert.ok(rows.length >= minRows + 1, `panel ${panel} CSV has ${rows.length} lines`);
        const width = rows[0].split(",").length;
        assert.ok(width >= 2, "CSV has several columns");
        assert.ok(
          rows.every((r) => r.split(",").length === width),
          "CSV rows are rectangular",
        );
        assert.ok(
          rows.slice(1).every((r) => r.split(",").every((f) => f === "" || Number.isFinite(Number(f)))),
          "CSV data rows are numbers",
        );
      }
      assertClean(problems, "exports");
    } finally {
      await context.close();
    }
  });

  test("embed guide: the live API demo follows the widget", { timeout: 60_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, PAGES.guide);
      const widget = page.locator("#api-demo-widget");
      const value = page.locator("#api-demo-value");
      await value.filter({ hasText: /\d/ }).waitFor();
      assert.equal(await value.textContent(), lClip(1.5, 1, 0.2).toFixed(2));
      await pressOnSlider(widget, "eps", "ArrowRight", 1);
      await waitForState(widget, (s) => Math.abs(s.params.eps - 0.21) < 1e-9);
      await value.filter({ hasText: lClip(1.5, 1, 0.21).toFixed(2) }).waitFor({ timeout: 5000 });
      assert.equal(await page.locator("#api-demo-eps").textContent(), "0.21");
      assert.match(await page.locator("#api-demo-last").textContent(), /eps = 0\.21/);
      // Hidden controls in the demo, as its markup says.
      assert.equal(await widget.locator('input[data-key="lr"]').isVisible(), false);

      // Copy buttons exist, one per snippet, and copy the snippet's text.
      const snippets = page.locator(".snippet");
      const n = await snippets.count();
      assert.ok(n >= 6, `${n} snippets`);
      assert.equal(await page.locator(".snippet button.copy").count(), n);
      await context.grantPermissions(["clipboard-read", "clipboard-write"]);
      const first = snippets.nth(1);
      await first.locator("button.copy").click();
      await first.locator("button.copy", { hasText: "Copied" }).waitFor();
      const copied = await page.evaluate(() => navigator.clipboard.readText());
      assert.equal(copied, await first.locator("code").textContent());
      assert.match(copied, /<ml-ppo-clip eps="0\.1"><\/ml-ppo-clip>/);
      assertClean(problems, "embed guide demo");
    } finally {
      await context.close();
    }
  });
});
