// <ml-transformer> in headless Chromium on its CPU path (the wasm trainer, WebGPU off):
// training tokens per second in the page, for the default model and a larger one, beside the
// native CLI (`mlplay transformer`, the same steps). "in step()" counts only the time inside
// the training units; "wall" is from Train to the last look at the model, so it also holds
// the looks (maps, scores, sampling every 10 steps) and the frames' idle time (the page gives
// the trainer at most 8 ms of each 16.7 ms frame).
// Needs a server on MLPLAY_URL (./build.sh bench starts one). Standalone:
//   MLPLAY_URL=http://127.0.0.1:8000/ node bench/transformer_page.mjs

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { gotoReady, openBrowser, openPage, stateOf, waitForState } from "../tests/e2e/_support.mjs";
import { REPO_ROOT, isMain, machine, table } from "./common.mjs";

process.env.MLPLAY_WEBGPU ??= "0";
const CLI = path.join(REPO_ROOT, "target", "release", "mlplay");

const CASES = [
  { what: "default model", query: "steps=200" },
  { what: "4 layers x 4 heads, d 64, ctx 64", query: "steps=20&layers=4&heads=4&d_model=64&ctx=64" },
];

async function inPage(browser, c) {
  const { context, page } = await openPage(browser);
  try {
    await gotoReady(page, `embed.html?w=transformer&${c.query}`);
    const widget = page.locator("ml-transformer");
    const start = Date.now();
    await widget.evaluate((el) => el.play());
    await waitForState(
      widget,
      (s) => s.data.step >= s.data.steps && s.data.analysis.step === s.data.step,
      null,
      {
        timeout: 600_000,
      },
    );
    const secs = (Date.now() - start) / 1000;
    const s = await stateOf(widget);
    const k = s.data.config;
    const tokens = s.data.step * k.batch * k.ctx;
    return { ...c, config: k, steps: s.data.step, secs, inStep: s.data.tokens_per_s, wall: tokens / secs };
  } finally {
    await context.close();
  }
}

/** The CLI on the same configuration: tokens per second over the whole run. */
function native(r) {
  if (!existsSync(CLI)) return NaN;
  const k = r.config;
  const out = execFileSync(
    CLI,
    [
      "transformer",
      ...["--task", k.task, "--layers", k.layers, "--heads", k.heads, "--d-model", k.d_model],
      ...["--ctx", k.ctx, "--batch", k.batch, "--pos", k.pos, "--tied", k.tied, "--lr", k.lr],
      ...["--seed", k.seed, "--steps", r.steps, "--log-every", r.steps, "--json"],
    ].map(String),
  );
  const first = JSON.parse(out.toString().split("\n")[0]);
  return (r.steps * k.batch * k.ctx) / (first.wall_ms / 1000);
}

export async function benchTransformerPage() {
  const browser = await openBrowser();
  try {
    const rows = [];
    for (const c of CASES) {
      const r = await inPage(browser, c);
      rows.push({ ...r, native: native(r) });
    }
    return rows;
  } finally {
    await browser.close();
  }
}

if (isMain(import.meta.url)) {
  const m = machine();
  console.log(`${m.cpu}, ${m.cores} cores, load average ${m.loadAverage1m}`);
  const rows = await benchTransformerPage();
  const k = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en") : "-");
  console.log(
    table([
      [
        "<ml-transformer> training (CPU path)",
        "steps",
        "wall s",
        "tokens/s in step()",
        "tokens/s wall",
        "native CLI",
      ],
      ...rows.map((r) => [
        `${r.what} (batch ${r.config.batch})`,
        String(r.steps),
        r.secs.toFixed(1),
        k(r.inStep),
        k(r.wall),
        k(r.native),
      ]),
    ]),
  );
}
