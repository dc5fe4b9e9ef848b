// <ml-rope> in a real browser: it loads cleanly and draws all four panels (light, dark,
// desktop, phone); the "shift both" slider turns the arrows but leaves the displayed score
// unchanged; the diagonal spread shown is about zero for RoPE and clearly not for the
// sinusoids; the pairing toggle keeps the scores; the log-scale base slider; bad values.
// Expected numbers are derived here from the RoPE formulas (theta_i = b^(-2i/d), pair i
// rotated by m theta_i), not read back from the widget.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT } from "./browser.mjs";
import {
  approx,
  assertClean,
  assertNoSidewaysScroll,
  assertDrawn,
  canvasHash,
  canvasHashChange,
  gotoReady,
  openBrowser,
  openPage,
  pressOnSlider,
  readoutOf,
  shotPath,
  stateOf,
  waitForState,
} from "./_support.mjs";

const EMBED = "embed.html?w=rope";
const PANELS = 4;
const DEFAULTS = Object.freeze({
  dim: 64,
  base: 10000,
  m: 7,
  n: 3,
  shift: 0,
  pair: 0,
  max_pos: 48,
  sim: 0.8,
  seed: 1,
  pairing: "interleaved",
  scaling: "none",
  factor: 4,
  ctx: 4096,
});

// ---- RoPE, written here from the paper (Su et al. 2021), independently of the crate ----

const thetas = (d, base) => Array.from({ length: d / 2 }, (_, i) => base ** ((-2 * i) / d));
const pairOf = (pairing, d, i) => (pairing === "halves" ? [i, i + d / 2] : [2 * i, 2 * i + 1]);

/** R_pos x: pair i turned by pos * theta_i. */
function rotate(x, pos, th, pairing) {
  const out = x.slice();
  th.forEach((t, i) => {
    const [a, b] = pairOf(pairing, x.length, i);
    const c = Math.cos(pos * t);
    const s = Math.sin(pos * t);
    out[a] = x[a] * c - x[b] * s;
    out[b] = x[a] * s + x[b] * c;
  });
  return out;
}

const dot = (a, b) => a.reduce((acc, v, i) => acc + v * b[i], 0);

/** Largest range along a diagonal m - n = const, over the largest |entry|. */
function diagonalSpread(S) {
  const p = S.length;
  let worst = 0;
  let scale = 0;
  for (const row of S) for (const v of row) scale = Math.max(scale, Math.abs(v));
  for (let off = -(p - 1); off <= p - 1; off++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let m = 0; m < p; m++) {
      const n = m - off;
      if (n >= 0 && n < p) {
        lo = Math.min(lo, S[m][n]);
        hi = Math.max(hi, S[m][n]);
      }
    }
    worst = Math.max(worst, hi - lo);
  }
  return worst / scale;
}

/** The screen-reader description of a panel (what the page says the panel shows). */
const description = (widget, panel) =>
  widget.evaluate((el, panel) => el.shadowRoot.getElementById(`ml-desc-${panel}`).textContent, panel);

describe("<ml-rope>", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const colorScheme of ["light", "dark"]) {
    for (const phone of [false, true]) {
      const label = `${colorScheme} ${phone ? "phone 390px" : "desktop 1200px"}`;
      test(
        `loads without errors and draws all ${PANELS} panels (${label})`,
        { timeout: 90_000 },
        async () => {
          const { context, page, problems } = await openPage(browser, { colorScheme, phone });
          try {
            await gotoReady(page, EMBED);
            const widget = page.locator("ml-rope");
            const s = await stateOf(widget);
            assert.deepEqual(s.params, DEFAULTS, "defaults");
            assert.deepEqual(s.notices, []);
            for (let panel = 0; panel < PANELS; panel++) await assertDrawn(widget, panel, label);
            assert.equal(await widget.locator(".error").isVisible(), false, "no internal error shown");
            await assertNoSidewaysScroll(page, label);
            await page.evaluate(() => document.fonts.ready);
            await page.waitForTimeout(250);
            await page.screenshot({ path: shotPath("rope", colorScheme, phone), fullPage: true });
            assertClean(problems, label);
          } finally {
            await context.close();
          }
        },
      );
    }
  }

  test(
    "the score follows the formula, and shifting both positions leaves it displayed unchanged",
    {
      timeout: 90_000,
    },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, EMBED);
        const widget = page.locator("ml-rope");
        const before = await stateOf(widget);
        const { dim, base, m, n, pairing } = before.params;
        const th = thetas(dim, base);
        const { q, k, dial } = before.data;
        assert.equal(q.length, dim);
        // The score from the rotated vectors, computed here.
        const score = dot(rotate(q, m, th, pairing), rotate(k, n, th, pairing));
        approx(dial.score, score, 1e-9 * Math.abs(score), "score = (R_m q).(R_n k)");
        assert.equal(dial.score_text, score.toFixed(3), "displayed score, three decimals");
        approx(dial.angle_q, m * th[0], 1e-12, "pair 0 of q turned by m theta_0");
        const desc0 = await description(widget, 0);
        assert.ok(desc0.includes(`Score q·k = ${dial.score_text}`), desc0);

        // Three notches of "shift both": positions m + 3, n + 3.
        const hash0 = await canvasHash(widget, 0);
        const hash1 = await canvasHash(widget, 1);
        await pressOnSlider(widget, "shift", "ArrowRight", 3);
        await waitForState(widget, (s) => s.params.shift === 3);
        const after = await stateOf(widget);
        assert.equal(await readoutOf(widget, "shift"), "3");
        const d = after.data.dial;
        assert.equal(d.m_pos, m + 3);
        assert.equal(d.n_pos, n + 3);
        approx(d.angle_q, (m + 3) * th[0], 1e-12, "the q arrow turned by 3 theta_0 more");
        approx(d.angle_k, (n + 3) * th[0], 1e-12, "the k arrow turned by 3 theta_0 more");
        assert.notDeepEqual(d.q_rot_pair, dial.q_rot_pair, "the rotated q pair moved");
        assert.equal(d.angle_between, dial.angle_between, "the angle between them did not");
        assert.equal(d.score_text, dial.score_text, "the displayed score did not change");
        const desc = await description(widget, 0);
        assert.ok(desc.includes(`Score q·k = ${dial.score_text}`), desc);
        assert.ok(desc.includes(`q at position ${m + 3}`), desc);
        // The computed score moved by rounding only, within the bound the crate derives.
        approx(d.score, dial.score, d.tolerance, "score after the shift");
        const shifted = dot(rotate(q, m + 3, th, pairing), rotate(k, n + 3, th, pairing));
        approx(d.score, shifted, 1e-9 * Math.abs(shifted), "score at the shifted positions");
        const moved = await canvasHashChange(widget, 0, hash0);
        assert.notEqual(moved, hash0, "the dial was redrawn with the arrows turned");

        // All the way: End puts the shift at 1024. Still the same displayed score.
        await pressOnSlider(widget, "shift", "End", 1);
        await waitForState(widget, (s) => s.params.shift === 1024);
        const far = await stateOf(widget);
        assert.equal(far.data.dial.score_text, dial.score_text, "displayed score at shift 1024");
        approx(far.data.dial.score, dial.score, far.data.dial.tolerance, "score at shift 1024");
        // The marked cell left the 48 x 48 matrix: panel 1 redraws, its numbers do not change.
        assert.deepEqual(far.data.matrix.rope, before.data.matrix.rope);
        await canvasHashChange(widget, 1, hash1);
        assertClean(problems, "shift");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "the diagonal spread shown is about zero for RoPE and clearly not for sinusoids",
    {
      timeout: 90_000,
    },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, `${EMBED}&max_pos=32&seed=5`);
        const widget = page.locator("ml-rope");
        const s = await stateOf(widget);
        const { rope, sinusoidal } = s.data.matrix;
        assert.equal(rope.length, 32);
        // Entries against the formula, and the sinusoidal one against (q + p_m).(k + p_n).
        const { dim, base, pairing } = s.params;
        const th = thetas(dim, base);
        const pe = (pos) =>
          Array.from({ length: dim }, (_, j) => (j % 2 ? Math.cos : Math.sin)(pos * th[j >> 1]));
        for (const [mm, nn] of [
          [0, 0],
          [3, 17],
          [31, 2],
        ]) {
          const want = dot(rotate(s.data.q, mm, th, pairing), rotate(s.data.k, nn, th, pairing));
          approx(rope[mm][nn], want, 1e-9 * Math.abs(want), `RoPE S[${mm}][${nn}]`);
          const qp = s.data.q.map((v, j) => v + pe(mm)[j]);
          const kp = s.data.k.map((v, j) => v + pe(nn)[j]);
          approx(sinusoidal[mm][nn], dot(qp, kp), 1e-9 * Math.abs(dot(qp, kp)), `sinusoidal S[${mm}][${nn}]`);
        }
        // The spreads, recomputed here from the matrices, and as the page states them.
        approx(s.data.matrix.spread_rope, diagonalSpread(rope), 1e-15, "RoPE spread");
        approx(s.data.matrix.spread_sinusoidal, diagonalSpread(sinusoidal), 1e-12, "sinusoidal spread");
        assert.ok(diagonalSpread(rope) < 1e-12, `RoPE spread ${diagonalSpread(rope)}`);
        assert.ok(diagonalSpread(sinusoidal) > 0.05, `sinusoidal spread ${diagonalSpread(sinusoidal)}`);
        const desc = await description(widget, 1);
        const shown = [...desc.matchAll(/spread ([-\d.e]+)/g)].map((x) => Number(x[1]));
        assert.equal(shown.length, 2, desc);
        assert.ok(shown[0] < 1e-12, `RoPE spread as shown: ${shown[0]} (${desc})`);
        assert.ok(shown[1] > 0.05, `sinusoidal spread as shown: ${shown[1]} (${desc})`);
        assertClean(problems, "spread");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "the pairing toggle keeps every score (the content is permuted like the weights)",
    {
      timeout: 90_000,
    },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, EMBED);
        const widget = page.locator("ml-rope");
        const before = await stateOf(widget);
        const hash = await canvasHash(widget, 0);
        await widget.locator('select[data-key="pairing"]').selectOption({ label: "halves" });
        await waitForState(widget, (s) => s.params.pairing === "halves");
        const after = await stateOf(widget);
        const d = DEFAULTS.dim;
        // halves[j] = interleaved[perm[j]], perm = [0, 2, 4, ..., 1, 3, 5, ...].
        const perm = Array.from({ length: d }, (_, j) => (j < d / 2 ? 2 * j : 2 * (j - d / 2) + 1));
        assert.deepEqual(
          after.data.q,
          perm.map((p) => before.data.q[p]),
        );
        assert.equal(after.data.dial.score_text, before.data.dial.score_text);
        after.data.matrix.rope.forEach((row, i) =>
          row.forEach((v, j) =>
            approx(v, before.data.matrix.rope[i][j], 1e-12 * Math.abs(v), `S[${i}][${j}]`),
          ),
        );
        assert.ok(after.data.matrix.pairing_max_diff < 1e-12);
        // Without the permutation the halves pairing gives other scores: the toggle is not a no-op.
        const th = thetas(d, DEFAULTS.base);
        const unpermuted = dot(
          rotate(before.data.q, 7, th, "halves"),
          rotate(before.data.k, 3, th, "halves"),
        );
        assert.ok(Math.abs(unpermuted - before.data.dial.score) > 1e-3);
        assert.notEqual(await canvasHashChange(widget, 0, hash), hash, "the layout strip redrew");
        assertClean(problems, "pairing");
      } finally {
        await context.close();
      }
    },
  );

  test("the base slider is logarithmic; attributes set exact bases", { timeout: 90_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, EMBED);
      const widget = page.locator("ml-rope");
      const hash = await canvasHash(widget, 3);
      // One notch is 0.05 in log10: 10^4.05 = 11220, set to two significant figures.
      await pressOnSlider(widget, "base", "ArrowRight", 1);
      await waitForState(widget, (s) => s.params.base !== 10000);
      let s = await stateOf(widget);
      assert.equal(s.params.base, 11000);
      thetas(64, 11000).forEach((t, i) => approx(s.data.frequencies.theta[i], t, 1e-15, `theta_${i}`));
      assert.notEqual(await canvasHashChange(widget, 3, hash), hash, "frequency panel redrawn");
      // Llama 3's base, exactly, through the property API.
      await widget.evaluate((el) => (el.base = 500000));
      await waitForState(widget, (s) => s.params.base === 500000);
      s = await stateOf(widget);
      approx(s.data.frequencies.theta[63 - 32], 500000 ** (-62 / 64), 1e-15, "theta_31 at b = 500,000");
      const pos = await widget.locator('input[data-key="base"]').evaluate((i) => Number(i.value));
      approx(pos, Math.log10(500000), 0.026, "slider sits at log10(500,000)");
      // NTK scaling with s = 4 leaves theta_0 and divides the slowest pair's theta by 4.
      await widget.locator('select[data-key="scaling"]').selectOption({ label: "ntk" });
      await waitForState(widget, (s) => s.params.scaling === "ntk");
      s = await stateOf(widget);
      const f = s.data.frequencies;
      approx(f.theta_scaled[0], 1, 1e-15, "NTK keeps pair 0");
      approx(f.theta_scaled[31], f.theta[31] / 4, 1e-12 * f.theta[31], "NTK slows the last pair by s");
      assertClean(problems, "base");
    } finally {
      await context.close();
    }
  });

  test("bad values show notices; an out-of-range pair shows the last one", { timeout: 90_000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, `${EMBED}&dim=7&base=banana&pair=99`);
      const widget = page.locator("ml-rope");
      const s = await stateOf(widget);
      assert.equal(s.params.dim, 8, "7 is between the steps of 2: the nearest step above");
      assert.equal(s.params.base, 10000, "not a number: the default");
      assert.equal(s.params.pair, 99);
      assert.equal(s.data.dial.pair, 3, "d = 8 has pairs 0 to 3");
      const byKey = Object.fromEntries(s.notices.map((x) => [x.key, x.message]));
      assert.deepEqual(Object.keys(byKey).sort(), ["base", "dim"]);
      assert.match(byKey.dim, /steps of 2/);
      assert.match(byKey.base, /not a number/);
      const shown = await widget.evaluate((el) =>
        [...el.shadowRoot.querySelectorAll(".notices .notice")].map((n) => n.textContent),
      );
      assert.equal(shown.length, 2, "both notices are on the page");
      for (let panel = 0; panel < PANELS; panel++) await assertDrawn(widget, panel, "after bad values");
      assertClean(problems, "bad values");
    } finally {
      await context.close();
    }
  });

  test("same numbers on the CLI and in the browser", { timeout: 90_000 }, async () => {
    const cli = path.join(REPO_ROOT, "target", "release", "mlplay");
    assert.ok(existsSync(cli), `${cli} missing: build it with ./build.sh`);
    const args = [
      "rope",
      "--dim",
      "16",
      "--base",
      "500000",
      "--max-pos",
      "12",
      "--seed",
      "7",
      "--matrix",
      "--json",
    ];
    const fromCli = JSON.parse(execFileSync(cli, args, { encoding: "utf8" }));
    const { context, page, problems } = await openPage(browser);
    try {
      await gotoReady(page, `${EMBED}&dim=16&base=500000&max_pos=12&seed=7`);
      const s = await stateOf(page.locator("ml-rope"));
      assert.deepEqual(s.data.matrix.rope, fromCli.matrix, "score matrix, bit for bit");
      assert.deepEqual(s.data.q, fromCli.q);
      // Everything the widget plots (dial, matrices, decay curves, frequencies), from the
      // generic CLI path with the same keys as the attributes.
      const generic = [
        "rope",
        "--dim",
        "16",
        "--base",
        "500000",
        "--max_pos",
        "12",
        "--seed",
        "7",
        "--shift",
        "300",
      ];
      const all = JSON.parse(execFileSync(cli, generic, { encoding: "utf8" }));
      await page.locator("ml-rope").evaluate((el) => (el.shift = 300));
      await waitForState(page.locator("ml-rope"), (st) => st.params.shift === 300);
      const moved = await stateOf(page.locator("ml-rope"));
      assert.deepEqual(moved.params, all.params, "params");
      assert.deepEqual(moved.data, all.data, "all plotted data, bit for bit");
      assertClean(problems, "cli parity");
    } finally {
      await context.close();
    }
  });
});
