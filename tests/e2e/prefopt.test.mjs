// <ml-dpo> and <ml-grpo> in a real browser: they load and draw without console errors, a
// keyboard slider move changes `state` as the formulas say and changes the pixels, training
// runs without freezing the page and lands on the numbers the native CLI prints (bit for
// bit), the DPO pairs can be edited as CSV, and a group with equal rewards has zero
// advantages.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT } from "./browser.mjs";
import {
  approx,
  assertClean,
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

const CLI = path.join(REPO_ROOT, "target", "release", "mlplay");

/** The native CLI's JSON lines for a widget (built by ./build.sh build). */
function cliLines(args) {
  assert.ok(existsSync(CLI), `${CLI} is missing: run ./build.sh build first`);
  return execFileSync(CLI, args, { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** pi*(y|x) = pi_ref(y|x) exp(r(x,y)/beta) / Z(x), written here from the paper. */
function closedForm(piRef, reward, beta) {
  return piRef.map((row, x) => {
    const w = row.map((p, y) => p * Math.exp(reward[x][y] / beta));
    const z = w.reduce((a, b) => a + b, 0);
    return w.map((v) => v / z);
  });
}

/** GRPO's advantages, written here from the paper: (r - mean) / std, zero if all equal. */
function zScores(rewards) {
  const n = rewards.length;
  const mean = rewards.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(rewards.reduce((a, r) => a + (r - mean) ** 2, 0) / n);
  if (rewards.every((r) => r === rewards[0])) return rewards.map(() => 0);
  return rewards.map((r) => (r - mean) / std);
}

/** Trains a widget to its last step with the page's own Train button. */
async function trainToEnd(widget, timeout = 120_000) {
  await widget.locator('[data-action="play"]').click();
  await waitForState(widget, (s) => s.data.done, undefined, { timeout });
}

/** Records long tasks (main-thread blocks over 50 ms) from now on. */
async function watchLongTasks(page) {
  await page.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__long.push(e.duration);
    }).observe({ type: "longtask", buffered: false });
  });
  return () => page.evaluate(() => window.__long);
}

describe("<ml-dpo>", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test(
    "loads, draws five panels, and the β slider moves π* as the formula says",
    { timeout: 90_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=dpo");
        const widget = page.locator("ml-dpo");
        for (let p = 0; p < 5; p++) await assertDrawn(widget, p, "dpo");
        let s = await stateOf(widget);
        assert.equal(s.params.beta, 0.5);
        assert.equal(s.data.step, 0);
        approx(s.data.history.loss[0], Math.LN2, 1e-12, "loss at the reference is ln 2");
        assert.equal(s.data.pairs.length, 500);
        const before = await canvasHash(widget, 4);
        await pressOnSlider(widget, "beta", "ArrowRight", 3);
        await waitForState(widget, (s) => Math.abs(s.params.beta - 0.53) < 1e-9);
        s = await stateOf(widget);
        const want = closedForm(s.data.ref_policy, s.data.true_reward, 0.53);
        want.forEach((row, x) =>
          row.forEach((v, y) => approx(s.data.closed_form_policy[x][y], v, 1e-12, `pi*[${x}][${y}]`)),
        );
        assert.notEqual(await canvasHashChange(widget, 4, before), before, "the policy panel redraws");
        assertClean(problems, "dpo load");
      } finally {
        await context.close();
      }
    },
  );

  test("trains without freezing the page and lands on the CLI's numbers", { timeout: 180_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, "embed.html?w=dpo&steps=300&seed=7");
      const widget = page.locator("ml-dpo");
      const progress = [];
      await page.exposeFunction("__progress", (d) => progress.push(d));
      await widget.evaluate((el) => el.addEventListener("progress", (e) => window.__progress(e.detail)));
      const longTasks = await watchLongTasks(page);
      const before = await canvasHash(widget, 3);
      await trainToEnd(widget);
      const s = await stateOf(widget);
      assert.equal(s.data.step, 300);
      assert.ok(progress.length >= 1, "progress events while training");
      assert.ok(progress.at(-1).done && progress.at(-1).fraction === 1);
      const long = await longTasks();
      assert.ok(Math.max(0, ...long) < 250, `main thread blocked: ${long.join(", ")} ms`);
      assert.notEqual(await canvasHash(widget, 3), before, "the KL panel changed");
      // Small beta drifts far, large beta stays close.
      const kl = s.data.kl_runs.map((r) => r.kl.at(-1));
      assert.ok(kl[1] > kl[0] && kl[0] > kl[2], `KL at beta/4, beta, 4 beta: ${kl[1]}, ${kl[0]}, ${kl[2]}`);
      // The same seed on the native CLI gives the same run.
      const lines = cliLines(["dpo", "--steps", "300", "--seed", "7", "--json"]);
      const last = lines.at(-1);
      last.learned_policy.forEach((row, x) =>
        row.forEach((v, y) => assert.equal(s.data.learned_policy[x][y], v, `CLI vs browser pi[${x}][${y}]`)),
      );
      assert.equal(s.data.history.loss.at(-1), lines.at(-2).loss, "final loss, bit for bit");
      assertClean(problems, "dpo training");
    } finally {
      await context.close();
    }
  });

  test(
    "pairs can be edited as CSV; bad CSV is a notice and keeps the pairs",
    { timeout: 90_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=dpo");
        const widget = page.locator("ml-dpo");
        await widget.locator("details.text-input summary").click();
        const area = widget.locator("textarea[data-text]");
        // The box is filled by the details element's `toggle` event, which fires after the click.
        await area.evaluate(
          (el) =>
            new Promise((resolve) => {
              const check = () => (el.value ? resolve() : requestAnimationFrame(check));
              check();
            }),
        );
        const shown = await area.inputValue();
        const rows = shown.trim().split("\n");
        assert.equal(rows[0], "prompt,chosen,rejected");
        assert.equal(rows.length, 501, "the 500 generated pairs");

        // Flip every pair of prompt 0: the implicit reward order of prompt 0 must reverse.
        const flipped = [rows[0]]
          .concat(
            rows.slice(1).map((r) => {
              const [x, w, l] = r.split(",");
              return x === "0" ? `${x},${l},${w}` : r;
            }),
          )
          .join("\n");
        await area.fill(flipped);
        await widget.locator('[data-action="text-apply"]').click();
        await waitForState(widget, (s) => s.data.source === "custom");
        let s = await stateOf(widget);
        assert.equal(s.data.pairs.length, 500);
        assert.match(await widget.locator(".text-status").textContent(), /using 500 pairs from the text/);
        await trainToEnd(widget);
        s = await stateOf(widget);
        const r0 = s.data.true_reward[0];
        const h0 = s.data.implicit_reward[0];
        const best = r0.indexOf(Math.max(...r0));
        const worst = r0.indexOf(Math.min(...r0));
        assert.ok(h0[best] < h0[worst], "flipped labels teach prompt 0 the reverse order");

        // A bad row: a notice naming the line, the custom pairs stay.
        const bad = await widget.evaluate((el) => el.setText("0,1,2\n0,one,2\n"));
        assert.equal(bad.ok, false);
        assert.match(bad.message, /line 2/);
        s = await stateOf(widget);
        assert.ok(s.notices.some((n) => n.key === "text" && /line 2/.test(n.message)));
        assert.equal(s.data.pairs.length, 500);
        assert.ok((await widget.locator(".notices").textContent()).includes("line 2"));

        // Back to the Bradley-Terry pairs.
        await widget.locator('[data-action="text-clear"]').click();
        await waitForState(widget, (s) => s.data.source === "bradley-terry" && s.notices.length === 0);
        assertClean(problems, "dpo csv");
      } finally {
        await context.close();
      }
    },
  );
});

describe("<ml-grpo>", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test("loads, draws, and G changes the group the next step samples", { timeout: 90_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, "embed.html?w=grpo");
      const widget = page.locator("ml-grpo");
      for (let p = 0; p < 4; p++) await assertDrawn(widget, p, "grpo");
      let s = await stateOf(widget);
      assert.equal(s.params["group-size"], 8);
      assert.equal(s.data.groups_are_preview, true);
      assert.equal(s.data.groups.length, 8, "B groups");
      const before = await canvasHash(widget, 0);
      await pressOnSlider(widget, "group-size", "ArrowRight", 4);
      await waitForState(widget, (s) => s.params["group-size"] === 12);
      await widget.locator('[data-action="step"]').click();
      await waitForState(widget, (s) => s.data.step >= 1);
      s = await stateOf(widget);
      assert.equal(s.data.groups_are_preview, false);
      for (const g of s.data.groups) {
        assert.equal(g.rewards.length, 12, "G = 12 answers per prompt");
        const want = zScores(g.rewards);
        want.forEach((a, i) => approx(g.advantages[i], a, 1e-12, `${g.prompt_text} A[${i}]`));
        assert.equal(
          g.zero_advantage,
          g.rewards.every((r) => r === g.rewards[0]),
        );
      }
      assert.notEqual(await canvasHashChange(widget, 0, before), before, "the group panel redraws");
      assertClean(problems, "grpo load");
    } finally {
      await context.close();
    }
  });

  test(
    "trains to > 80% accuracy without freezing, with the CLI's numbers",
    { timeout: 180_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=grpo&seed=3");
        const widget = page.locator("ml-grpo");
        const longTasks = await watchLongTasks(page);
        await trainToEnd(widget);
        const s = await stateOf(widget);
        assert.equal(s.data.step, 300);
        const h = s.data.history;
        assert.ok(h.accuracy.at(-1) > 0.8, `accuracy ${h.accuracy.at(-1)}`);
        assert.ok(s.data.initial_accuracy < 0.3);
        const long = await longTasks();
        assert.ok(Math.max(0, ...long) < 250, `main thread blocked: ${long.join(", ")} ms`);
        // Groups whose rewards were all equal: advantages exactly zero (never NaN).
        const zero = s.data.groups.filter((g) => g.zero_advantage);
        for (const g of zero) assert.ok(g.advantages.every((a) => a === 0));
        assert.ok(
          h.zero_adv_groups.some((z) => z > 0),
          "equal-reward groups happen",
        );
        // Comparisons ran on the same prompts.
        assert.equal(h.accuracy_reinforce.length, h.step.length);
        assert.equal(h.accuracy_ppo.length, h.step.length);
        assert.ok(s.data.costs.find((c) => c.method === "ppo_critic").critic_params === 100);
        // The CLI, same seed: the same logged rows.
        const lines = cliLines(["grpo", "--seed", "3", "--json"]);
        assert.equal(lines.length, h.step.length);
        lines.forEach((l, i) => {
          assert.equal(l.step, h.step[i]);
          approx(h.accuracy[i], l.accuracy, 1e-9, `accuracy at step ${l.step}`);
          approx(h.mean_reward[i], l.mean_reward, 1e-12, `mean reward at step ${l.step}`);
          approx(h.kl[i], l.kl, 1e-9, `kl at step ${l.step}`);
        });
        assertClean(problems, "grpo training");
      } finally {
        await context.close();
      }
    },
  );

  test("format reward: tagged answers appear and are worth 0.2 more", { timeout: 90_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, "embed.html?w=grpo&format=on&steps=60&group-size=16");
      const widget = page.locator("ml-grpo");
      await trainToEnd(widget);
      const s = await stateOf(widget);
      const all = s.data.groups.flatMap((g) =>
        g.completions.map((c, i) => ({ c, r: g.rewards[i], prompt: g.prompt_text })),
      );
      for (const { c, r, prompt } of all) {
        const [a, b] = prompt.match(/\d+/g).map(Number);
        const tagged = c.startsWith("<answer>");
        const value = Number(c.replace(/<\/?answer>/g, ""));
        approx(r, (value === a + b ? 1 : 0) + (tagged ? 0.2 : 0), 1e-12, `reward of ${c} for ${prompt}`);
      }
      assertClean(problems, "grpo format");
    } finally {
      await context.close();
    }
  });
});

describe("screenshots: light and dark, desktop and phone", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const name of ["dpo", "grpo"]) {
    for (const colorScheme of ["light", "dark"]) {
      for (const phone of [false, true]) {
        test(`${name} ${colorScheme}${phone ? " phone" : ""}`, { timeout: 120_000 }, async () => {
          const { context, page, problems } = await openPage(browser, { colorScheme, phone });
          try {
            await gotoReady(page, `embed.html?w=${name}&steps=100`);
            const widget = page.locator(`ml-${name}`);
            await trainToEnd(widget);
            await page.waitForTimeout(200);
            const n = name === "dpo" ? 5 : 4;
            for (let p = 0; p < n; p++) await assertDrawn(widget, p, `${name} ${colorScheme}`);
            // No panel is wider than the page (nothing to scroll sideways on a phone).
            const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
            assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px`);
            await page.screenshot({ path: shotPath(name, colorScheme, phone), fullPage: true });
            assertClean(problems, `${name} screenshot`);
          } finally {
            await context.close();
          }
        });
      }
    }
  }
});
