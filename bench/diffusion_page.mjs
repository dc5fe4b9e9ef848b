// <ml-diffusion> and <ml-flow-matching> in headless Chromium, on their CPU path (the wasm
// twin, WebGPU off) and on WebGPU (here SwiftShader, the CPU emulating a GPU):
// - how long in-page training on two moons takes to reach the learning test's threshold (3x
//   the data's own sampling distance, tests/diffusion_learn.rs), and the GPU path's rate;
// - how fast the reverse process is computed (particle-steps per second);
// - the frame times of its playback at 10k particles: requestAnimationFrame intervals (mean,
//   p95, frames per second) and the main thread's work per frame, from the frame's start to
//   a message posted in a rAF callback (which runs after the frame's callbacks, the widget's
//   drawing among them, and its rendering), over all frames and over those that drew a new
//   step (counted by the cloud's one putImageData per drawing).
// Needs a server on MLPLAY_URL (./build.sh bench starts one). Standalone:
//   MLPLAY_URL=http://127.0.0.1:8000/ node bench/diffusion_page.mjs

import { launchBrowser } from "../tests/e2e/browser.mjs";
import { gotoReady, openPage, stateOf, waitForState } from "../tests/e2e/_support.mjs";
import { isMain, machine, table } from "./common.mjs";

const allDone = (s) => s.data.runs.length > 0 && s.data.runs.every((r) => r.done);
const computed = (s) => s.data.runs.length > 0 && s.data.runs.every((r) => r.computed);
/** tests/diffusion_learn.rs: the floor at n = 2000 on two moons is 0.0332; the bar 3x that. */
const THRESHOLD = 3 * 0.0332;
/** How long the frames of a playback are recorded (the playback lasts 3 s). */
const RECORD_MS = 2400;

async function sampling(browser, where, name, particles, steps) {
  const { context, page } = await openPage(browser);
  try {
    const t0 = Date.now();
    await gotoReady(page, `embed.html?w=${name}&particles=${particles}&steps=${steps}`);
    const widget = page.locator(`ml-${name}`);
    await waitForState(widget, (s) => s.data.runs.length > 0, null, { timeout: 60_000 });
    const start = Date.now();
    await waitForState(widget, computed, null, { timeout: 600_000 });
    const secs = (Date.now() - start) / 1000;
    await waitForState(widget, allDone, null, { timeout: 120_000 });
    const s = await stateOf(widget);
    const evals = s.data.runs.reduce((a, r) => a + r.network_evaluations, 0);
    return {
      what: `${where}, ${name}: ${particles} particles, ${s.data.runs.map((r) => `${r.sampler} ${r.steps}`).join(" + ")}`,
      secs,
      rate: (particles * evals) / secs,
      stepsPerSec: evals / secs,
      swd: s.data.runs.map((r) => r.swd.toFixed(3)).join(", "),
      load: (start - t0) / 1000,
    };
  } finally {
    await context.close();
  }
}

const mean = (xs) => xs.reduce((a, x) => a + x, 0) / xs.length;
const p95 = (xs) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(0.95 * xs.length))];

/** The playback of the computed reverse process: frame intervals and work per frame. */
export async function playback(browser, where, name, particles, steps) {
  const { context, page } = await openPage(browser);
  try {
    await gotoReady(page, `embed.html?w=${name}&particles=${particles}&steps=${steps}`);
    const widget = page.locator(`ml-${name}`);
    await waitForState(widget, computed, null, { timeout: 600_000 });
    const m = await widget.evaluate(async (el, ms) => {
      const playing = () => el.state.data.runs.some((r) => r.playing);
      while (!playing()) await new Promise((r) => setTimeout(r, 20));
      const from = el.state.data.runs[0].shown;
      // Count the clouds drawn (plot::cloud writes each with one putImageData).
      let draws = 0;
      const put = CanvasRenderingContext2D.prototype.putImageData;
      CanvasRenderingContext2D.prototype.putImageData = function (...args) {
        draws++;
        return put.apply(this, args);
      };
      const stamps = [];
      const work = [];
      const drawn = [];
      const mc = new MessageChannel();
      let frame = 0;
      let seen = 0;
      mc.port1.onmessage = () => {
        work.push(performance.now() - frame);
        drawn.push(draws > seen);
        seen = draws;
      };
      await new Promise((resolve) => {
        const end = performance.now() + ms;
        const f = (t) => {
          stamps.push(t);
          frame = t;
          mc.port2.postMessage(0);
          if (t < end) requestAnimationFrame(f);
          else resolve();
        };
        requestAnimationFrame(f);
      });
      CanvasRenderingContext2D.prototype.putImageData = put;
      const r = el.state.data.runs[0];
      return { stamps, work, drawn, from, to: r.shown, playing: r.playing };
    }, RECORD_MS);
    const gaps = m.stamps.slice(1).map((t, i) => t - m.stamps[i]);
    return {
      what: `${where}, ${name}: ${particles} particles, ${steps} steps`,
      frames: gaps.length,
      mean: mean(gaps),
      p95: p95(gaps),
      fps: 1000 / mean(gaps),
      slow: gaps.filter((g) => g > 1000 / 50).length / gaps.length,
      workMean: mean(m.work),
      workP95: p95(m.work),
      redraws: m.drawn.filter(Boolean).length,
      redrawMean: mean(m.work.filter((_, i) => m.drawn[i])),
      redrawP95: p95(m.work.filter((_, i) => m.drawn[i])),
      steps: `${m.from} -> ${m.to}${m.playing ? " (playing)" : ""}`,
    };
  } finally {
    await context.close();
  }
}

async function training(browser, where, name, trainSteps) {
  const { context, page } = await openPage(browser);
  try {
    await gotoReady(page, `embed.html?w=${name}&train_steps=${trainSteps}`);
    const widget = page.locator(`ml-${name}`);
    await waitForState(widget, allDone, null, { timeout: 300_000 });
    const start = Date.now();
    await widget.evaluate((el) => el.play());
    await waitForState(
      widget,
      (s) => s.data.models.every((m) => m.source.startsWith("trained in the page")),
      null,
      { timeout: 1_200_000 },
    );
    const secs = (Date.now() - start) / 1000;
    await waitForState(widget, allDone, null, { timeout: 300_000 });
    const s = await stateOf(widget);
    const steps = s.data.training.reduce((a, t) => a + t.step, 0);
    return {
      what: `${where}, ${name}: ${trainSteps} steps (batch 128)${s.data.training.length > 1 ? " x 2 networks" : ""}`,
      secs,
      stepsPerSec: steps / secs,
      swd: s.data.runs[0].swd,
    };
  } finally {
    await context.close();
  }
}

export async function benchDiffusionPage() {
  const samples = [];
  const plays = [];
  const trains = [];
  const cpu = await launchBrowser({ webgpu: false });
  try {
    const where = "CPU (wasm)";
    samples.push(await sampling(cpu, where, "diffusion", 2000, 50));
    samples.push(await sampling(cpu, where, "diffusion", 10000, 50));
    samples.push(await sampling(cpu, where, "flow-matching", 2000, 8));
    plays.push(await playback(cpu, where, "diffusion", 10000, 50));
    plays.push(await playback(cpu, where, "diffusion", 2000, 50));
    trains.push(await training(cpu, where, "diffusion", 2000));
    trains.push(await training(cpu, where, "flow-matching", 1000));
  } finally {
    await cpu.close();
  }
  const gpu = await launchBrowser({ webgpu: true });
  try {
    const where = "WebGPU (SwiftShader)";
    samples.push(await sampling(gpu, where, "diffusion", 2000, 50));
    samples.push(await sampling(gpu, where, "diffusion", 10000, 10));
    plays.push(await playback(gpu, where, "diffusion", 10000, 10));
    trains.push(await training(gpu, where, "diffusion", 300));
  } finally {
    await gpu.close();
  }
  return { samples, plays, trains };
}

if (isMain(import.meta.url)) {
  const m = machine();
  console.log(`${m.cpu}, ${m.cores} cores, load average ${m.loadAverage1m}`);
  const r = await benchDiffusionPage();
  console.log(
    table([
      ["reverse process, computed", "wall s", "particle-steps/s", "steps/s", "SW2"],
      ...r.samples.map((x) => [
        x.what,
        x.secs.toFixed(1),
        x.rate.toExponential(2),
        x.stepsPerSec.toFixed(1),
        x.swd,
      ]),
    ]),
  );
  console.log(
    table([
      [
        "reverse process, played",
        "frames",
        "mean ms",
        "p95 ms",
        "fps",
        "> 20 ms",
        "work/frame mean ms",
        "p95 ms",
        "frames with a new step",
        "their work mean ms",
        "p95 ms",
        "steps drawn",
      ],
      ...r.plays.map((x) => [
        x.what,
        String(x.frames),
        x.mean.toFixed(1),
        x.p95.toFixed(1),
        x.fps.toFixed(1),
        `${(100 * x.slow).toFixed(0)}%`,
        x.workMean.toFixed(1),
        x.workP95.toFixed(1),
        String(x.redraws),
        x.redrawMean.toFixed(1),
        x.redrawP95.toFixed(1),
        x.steps,
      ]),
    ]),
  );
  console.log(
    table([
      ["in-page training", "wall s", "Adam steps/s", "SW2 after", `below ${THRESHOLD.toFixed(3)}?`],
      ...r.trains.map((x) => [
        x.what,
        x.secs.toFixed(1),
        x.stepsPerSec.toFixed(1),
        x.swd.toFixed(3),
        x.swd < THRESHOLD ? "yes" : "no",
      ]),
    ]),
  );
}
