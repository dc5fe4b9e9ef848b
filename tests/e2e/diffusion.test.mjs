// <ml-diffusion> and <ml-flow-matching> in a real browser, with WebGPU (SwiftShader) and
// without (MLPLAY_WEBGPU=0): both load with zero console errors (light, dark, desktop, phone),
// name their backend in the badge ("WebGPU: <adapter>" or "CPU: WebAssembly"), fetch their
// default weights from www/weights/ and play them (the reverse process is computed, on the
// GPU or the CPU, then played and lands near the data, with the sliced Wasserstein distance
// the CLI prints for the same weights, sampler and seed: bit for bit on the CPU, within the
// GPU tests' 1e-4 on the GPU); the step slider scrubs the kept steps; the particle control
// takes up to 100k on the GPU and caps the CPU path at 10k with a note; the t slider moves
// the cloud as the closed form says; Train trains in the page on the backend in force, with
// the CLI's losses for the same batches and seed, and replaces the weights; drawn points
// come from the pointer.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO_ROOT, webgpuFromEnv } from "./browser.mjs";
import {
  assertClean,
  assertNoSidewaysScroll,
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

const PANELS = 4;
const GPU = webgpuFromEnv();
const CLI = path.join(REPO_ROOT, "target", "release", "mlplay");
const allDone = (s) => s.data.runs.length > 0 && s.data.runs.every((r) => r.done);

/** The CLI's sample of the same weights, sampler, steps, particles and seed. */
function cli(weights, sampler, steps, n, seed) {
  return run([
    "diffusion-sample",
    "--weights",
    path.join(REPO_ROOT, "www", "weights", weights),
    "--sampler",
    sampler,
    "--steps",
    String(steps),
    "--n",
    String(n),
    "--seed",
    String(seed),
    "--json",
  ]);
}

/** The CLI's training run on the CPU with the page's settings (batch 128, the page's seed). */
function cliTrain(method, steps, seed) {
  const out = path.join(REPO_ROOT, "target", `e2e-${method}-${steps}-${seed}.bin`);
  return run(
    `diffusion-train --dataset moons --method ${method} --steps ${steps} --batch 128 --seed ${seed} --backend cpu --out ${out} --json`.split(
      " ",
    ),
  );
}

function run(args) {
  return JSON.parse(execFileSync(CLI, args, { maxBuffer: 256 << 20 }));
}

describe("<ml-diffusion> and <ml-flow-matching>", () => {
  let browser;
  before(async () => {
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const name of ["diffusion", "flow-matching"]) {
    for (const colorScheme of ["light", "dark"]) {
      for (const phone of [false, true]) {
        const label = `${name} ${colorScheme} ${phone ? "phone 390px" : "desktop 1200px"}`;
        test(
          `loads, plays the default weights, draws every panel (${label})`,
          { timeout: 120_000 },
          async () => {
            const { context, page, problems } = await openPage(browser, { colorScheme, phone });
            try {
              await gotoReady(page, `embed.html?w=${name}`);
              const widget = page.locator(`ml-${name}`);
              await waitForState(widget, allDone, null, { timeout: 90_000 });
              const s = await stateOf(widget);
              assert.deepEqual(s.notices, []);
              assert.ok(
                s.data.models.every((m) => m.loaded && m.source === "default weights"),
                label,
              );
              // The badge names what computed the samples, and they were computed there.
              const badge = await widget.evaluate((el) => el.shadowRoot.querySelector(".badge").textContent);
              assert.match(badge, GPU ? /^WebGPU: \S/ : /^CPU: WebAssembly$/, label);
              assert.equal(s.data.backend, GPU ? "webgpu" : "cpu", label);
              for (const r of s.data.runs) assert.equal(r.on_gpu, GPU, `${label}: ${r.sampler} on the GPU`);
              for (const r of s.data.runs) assert.equal(r.completed, r.steps);
              // Two moons: the noise starts at SW 0.33 from the data, fresh data at ~0.03.
              const [first, ddim] = s.data.runs;
              assert.ok(first.swd < 0.12, `${label}: ${first.sampler} SW ${first.swd}`);
              if (ddim) {
                // Flow matching's claim: at 8 network evaluations its samples are closer to the
                // data than DDIM's with the same number of evaluations.
                assert.equal(ddim.network_evaluations, first.network_evaluations);
                assert.ok(first.swd < ddim.swd, `${label}: flow ${first.swd} vs DDIM ${ddim.swd}`);
              }
              for (let panel = 0; panel < PANELS; panel++) await assertDrawn(widget, panel, label);
              await assertNoSidewaysScroll(page, label);
              await page.waitForTimeout(200);
              await page.screenshot({ path: shotPath(name, colorScheme, phone), fullPage: true });
              assertClean(problems, label);
            } finally {
              await context.close();
            }
          },
        );
      }
    }
  }

  test(
    "the browser's samples are the CLI's: same weights, sampler, seed, same distance",
    { timeout: 120_000 },
    async (t) => {
      if (!existsSync(CLI)) return t.skip("target/release/mlplay not built");
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=diffusion");
        const widget = page.locator("ml-diffusion");
        await waitForState(widget, allDone, null, { timeout: 90_000 });
        const s = await stateOf(widget);
        const [run] = s.data.runs;
        const c = cli("moons-ddpm.bin", "ddim", run.steps, run.particles, s.params.seed);
        if (GPU) {
          // tests/gpu_diffusion.rs: the GPU's samples equal the CPU's within 1e-4, and SW_2
          // moves by at most the largest displacement of a point, so the distances agree
          // within 1e-4 too.
          assert.ok(run.on_gpu);
          assert.ok(Math.abs(run.swd - c.swd) <= 1e-4, `DDIM samples: GPU SW ${run.swd} vs CLI ${c.swd}`);
        } else {
          // The same f32 arithmetic natively and in wasm: the same samples, the same distance.
          assert.equal(run.swd, c.swd, "DDIM samples: browser SW == CLI SW");
        }
        assertClean(problems, "cli");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "the t slider moves the cloud as the closed form says, and the pixels",
    { timeout: 90_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=diffusion");
        const widget = page.locator("ml-diffusion");
        const before = await stateOf(widget);
        const hash = await canvasHash(widget, 0);
        await pressOnSlider(widget, "t", "End", 1);
        await waitForState(widget, (s) => s.params.t === 1000);
        const s = await stateOf(widget);
        // Linear schedule, T = 1000: alpha_bar_T = 4.0358e-5 (tests/diffusion_core.rs derives it).
        assert.ok(Math.abs(s.data.alpha_bar_linear - 4.0358e-5) < 1e-8, String(s.data.alpha_bar_linear));
        // The cloud is then nearly the noise: its mean moves from the data's toward 0.
        assert.notDeepEqual(s.data.cloud_mean, before.data.cloud_mean);
        assert.ok(Math.hypot(...s.data.cloud_mean) < 0.08, JSON.stringify(s.data.cloud_mean));
        assert.notEqual(await canvasHashChange(widget, 0, hash), hash, "panel 0 pixels change");
        assertClean(problems, "t slider");
      } finally {
        await context.close();
      }
    },
  );

  for (const name of ["diffusion", "flow-matching"]) {
    test(`Train trains in the page and replaces the weights (${name})`, { timeout: 120_000 }, async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, `embed.html?w=${name}&train_steps=100&particles=300`);
        const widget = page.locator(`ml-${name}`);
        await waitForState(widget, allDone, null, { timeout: 90_000 });
        const lossHash = await canvasHash(widget, 3);
        await widget.evaluate((el) => el.play());
        await waitForState(
          widget,
          (s) => s.data.models.every((m) => m.source.startsWith("trained in the page")),
          null,
          { timeout: 90_000 },
        );
        await waitForState(widget, allDone, null, { timeout: 60_000 });
        const s = await stateOf(widget);
        for (const t of s.data.training) {
          assert.equal(t.step, 100);
          assert.equal(t.gpu_steps, GPU ? 100 : 0, `${t.method}: steps on the GPU`);
          assert.ok(Number.isFinite(t.loss), JSON.stringify(t));
        }
        for (const m of s.data.models) assert.match(m.source, GPU ? /on WebGPU\)$/ : /on the CPU\)$/);
        const label = await widget.evaluate(
          (el) => el.shadowRoot.querySelector(".progress-text").textContent,
        );
        assert.match(label, GPU ? / on WebGPU / : / on the CPU /, "the widget says which backend trained");
        if (existsSync(CLI)) {
          // The same batches from the same seed: the CLI's CPU losses, every step bit for bit
          // in wasm, the first ten within 1e-4 relative on the GPU (tests/gpu_diffusion.rs).
          const [d] = await Promise.all([
            page.waitForEvent("download"),
            widget.locator('button[data-export="json"][data-panel="3"]').click(),
          ]);
          const curves = JSON.parse(readFileSync(await d.path(), "utf8"));
          for (const { method, loss } of curves) {
            const ref = cliTrain(method, 100, s.params.seed).loss;
            assert.equal(loss.length, 100);
            if (GPU) {
              for (let i = 0; i < 10; i++) {
                const rel = Math.abs(loss[i] - ref[i]) / Math.abs(ref[i]);
                assert.ok(rel <= 1e-4, `${method} step ${i + 1}: GPU ${loss[i]} vs CPU ${ref[i]}`);
              }
            } else {
              assert.deepEqual(loss, ref, `${method}: wasm losses == CLI losses`);
            }
          }
        }
        assert.notEqual(await canvasHashChange(widget, 3, lossHash), lossHash, "loss panel drawn");
        assertClean(problems, `train ${name}`);
      } finally {
        await context.close();
      }
    });
  }

  test(
    "the reverse process is computed once, then played; the step slider scrubs the kept steps",
    { timeout: 120_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=diffusion");
        const widget = page.locator("ml-diffusion");
        // While it plays, the step drawn only moves forward (one kept step per frame or so).
        await waitForState(widget, (s) => s.data.runs[0]?.playing, null, { timeout: 90_000 });
        const a = (await stateOf(widget)).data.runs[0];
        await page.waitForTimeout(600);
        const b = (await stateOf(widget)).data.runs[0];
        assert.ok(a.computed && b.computed && a.completed === a.steps, JSON.stringify(a));
        assert.ok(b.shown > a.shown || b.done, `playback moves: ${a.shown} -> ${b.shown}`);
        await waitForState(widget, allDone, null, { timeout: 30_000 });
        const end = (await stateOf(widget)).data.runs[0];
        assert.equal(end.shown, end.steps);
        const hash = await canvasHash(widget, 2);
        // Home: step 0 is the initial noise, far from the data (two moons: SW 0.33).
        await pressOnSlider(widget, "shown", "Home", 1);
        await waitForState(widget, (s) => s.params.shown === 0 && s.data.runs[0].done);
        const noise = (await stateOf(widget)).data.runs[0];
        assert.equal(noise.shown, 0);
        assert.ok(noise.swd > 0.3, `the noise's SW ${noise.swd}`);
        assert.notEqual(await canvasHashChange(widget, 2, hash), hash, "panel 2 pixels change");
        // Ten steps up: a kept step in between, drawn at once (no recomputation).
        await pressOnSlider(widget, "shown", "ArrowRight", 10);
        await waitForState(widget, (s) => s.params.shown === 10 && s.data.runs[0].done, null, {
          timeout: 20_000,
        });
        const mid = (await stateOf(widget)).data.runs[0];
        assert.equal(mid.shown, 10);
        assert.ok(mid.swd > end.swd, `step 10 (${mid.swd}) is farther from the data than step 50`);
        // End: the samples again, with the same distance as before the scrubbing.
        await pressOnSlider(widget, "shown", "End", 1);
        await waitForState(widget, (s) => s.params.shown === 1000 && s.data.runs[0].done);
        assert.equal((await stateOf(widget)).data.runs[0].swd, end.swd);
        assertClean(problems, "scrub");
      } finally {
        await context.close();
      }
    },
  );

  test(
    `the particle control: up to 100k on the GPU, 10k on the CPU path with a note (${GPU ? "WebGPU" : "CPU"})`,
    { timeout: 150_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=diffusion&steps=2");
        const widget = page.locator("ml-diffusion");
        await waitForState(widget, allDone, null, { timeout: 60_000 });
        const hash = await canvasHash(widget, 2);
        await widget.locator("details.more summary").click();
        await pressOnSlider(widget, "particles", "End", 1);
        await waitForState(widget, (s) => s.params.particles === 100000);
        await waitForState(widget, allDone, null, { timeout: 120_000 });
        const s = await stateOf(widget);
        const [r] = s.data.runs;
        assert.equal(r.particles, GPU ? 100000 : 10000);
        assert.equal(s.data.particles_cap, GPU ? null : 10000);
        assert.equal(r.on_gpu, GPU);
        if (existsSync(CLI)) {
          // The CLI's samples of as many particles: the same distance (GPU: within 1e-4).
          const c = cli("moons-ddpm.bin", "ddim", 2, r.particles, s.params.seed);
          if (GPU) assert.ok(Math.abs(r.swd - c.swd) <= 1e-4, `GPU SW ${r.swd} vs CLI ${c.swd}`);
          else assert.equal(r.swd, c.swd);
        }
        assert.notEqual(await canvasHashChange(widget, 2, hash), hash, "panel 2 pixels change");
        const text = await widget.evaluate((el) => el.shadowRoot.getElementById("ml-desc-2").textContent);
        assert.match(text, GPU ? /^100000 particles/ : /^10000 particles/);
        assertClean(problems, "particles");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "a lost GPU device: the CPU twin takes over, with a notice, from where it was",
    { timeout: 150_000 },
    async (t) => {
      if (!GPU) return t.skip("needs WebGPU");
      const { context, page, problems } = await openPage(browser);
      try {
        // Keep the page's devices, to lose them on purpose.
        await page.addInitScript(() => {
          const request = GPUAdapter.prototype.requestDevice;
          GPUAdapter.prototype.requestDevice = async function (...args) {
            const device = await request.apply(this, args);
            (window.mlplayDevices ||= []).push(device);
            return device;
          };
        });
        await gotoReady(page, "embed.html?w=diffusion&steps=20&train_steps=100&particles=300");
        const widget = page.locator("ml-diffusion");
        await waitForState(widget, allDone, null, { timeout: 90_000 });
        assert.equal((await stateOf(widget)).data.runs[0].on_gpu, true);
        await page.evaluate(() => window.mlplayDevices.forEach((d) => d.destroy()));
        // A new seed samples again: the readback fails, the CPU twin samples instead.
        await widget.evaluate((el) => el.setParam("seed", "2"));
        await waitForState(widget, (s) => s.data.backend === "cpu" && s.data.runs[0]?.done, null, {
          timeout: 90_000,
        });
        const s = await stateOf(widget);
        assert.match(s.data.cpu_reason, /^WebGPU failed/);
        assert.match(s.data.gpu_error, /CPU twin took over/);
        assert.equal(s.data.runs[0].on_gpu, false);
        const badge = await widget.evaluate((el) => el.shadowRoot.querySelector(".badge").textContent);
        assert.equal(badge, "CPU: WebAssembly");
        if (existsSync(CLI)) {
          const c = cli("moons-ddpm.bin", "ddim", 20, 300, 2);
          assert.equal(s.data.runs[0].swd, c.swd, "the CPU twin's samples are the CLI's");
        }
        // Training then runs on the CPU.
        await widget.evaluate((el) => el.play());
        await waitForState(widget, (s) => s.data.models[0].source.startsWith("trained in the page"), null, {
          timeout: 90_000,
        });
        assert.match((await stateOf(widget)).data.models[0].source, /on the CPU\)$/);
        assertClean(problems, "lost device");
      } finally {
        await context.close();
      }
    },
  );

  test(
    "drawn points: the pointer draws them on panel 0, the text box lists them",
    { timeout: 90_000 },
    async () => {
      const { context, page, problems } = await openPage(browser);
      try {
        await gotoReady(page, "embed.html?w=diffusion&dataset=drawn");
        const widget = page.locator("ml-diffusion");
        let s = await stateOf(widget);
        assert.equal(s.data.drawn_points, 0);
        assert.equal(s.data.runs.length, 0, "no default weights for drawn data");
        const canvas = widget.locator('canvas[data-panel="0"]');
        await canvas.scrollIntoViewIfNeeded();
        const box = await canvas.boundingBox();
        const [cx, cy] = [box.x + box.width / 2, box.y + box.height / 2];
        await page.mouse.move(cx - 60, cy);
        await page.mouse.down();
        for (let i = 0; i <= 12; i++) await page.mouse.move(cx - 60 + 10 * i, cy - 20 + 3 * i);
        await page.mouse.up();
        await waitForState(widget, (s) => s.data.drawn_points >= 5);
        s = await stateOf(widget);
        assert.equal(s.data.dataset, "drawn");
        const text = await widget.evaluate((el) => el.text);
        assert.equal(text.split(";").length, s.data.drawn_points);
        const r = await widget.evaluate((el) => el.setText("0,0;1,1;-1,1"));
        assert.ok(r.ok, r.message);
        await waitForState(widget, (s) => s.data.drawn_points === 3);
        assertClean(problems, "drawn");
      } finally {
        await context.close();
      }
    },
  );
});
