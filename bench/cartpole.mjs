// <ml-cartpole-ppo> benchmarks (`./build.sh bench` runs this after bench/run.mjs, with
// MLPLAY_URL pointing at a static server for www/):
//   1. sample efficiency: env steps to solve with the default preset over 10 seeds (CLI);
//      target: at least 9 of 10 solved within 100,000 steps;
//   2. wall time to solve, side by side on this machine: the CLI (release build), the
//      widget in headless Chromium (Train pressed, until its progress event says solved;
//      median of 5 seeds), and the PyTorch peer benches/cartpole_peer.py on Gymnasium's
//      CartPole-v1 with its best preset (median of 5 seeds); targets: the browser at most
//      3 s median and at least 5 times faster than the peer.
// The peer's Python packages (benches/requirements.txt) go into target/bench-venv when
// missing; CARTPOLE_PEER=0 skips the peer. Results: bench-out/cartpole.json.
// BENCH_STRICT=1 makes a missed target an error (exit 1).

import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { baseUrl, launchBrowser } from "../tests/e2e/browser.mjs";
import { REPO_ROOT, machine, median, peerPython, table } from "./common.mjs";

const log = (msg) => console.log(`    ${msg}`);
const info = machine();
const CLI = path.join(REPO_ROOT, "target", "release", "mlplay");
const seeds = (n) => Array.from({ length: n }, (_, i) => i + 1);
const fmtS = (ms) => `${(ms / 1000).toFixed(2)} s`;

// ---- 1. CLI: sample efficiency over 10 seeds, and its wall time -----------------------------
log("CLI: mlplay cartpole-ppo --seed 1..10 (default preset, budget 100,000 steps)");
const cli = seeds(10).map((seed) => {
  const out = execFileSync(CLI, ["cartpole-ppo", "--seed", String(seed), "--total-steps", "100000"], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  const done = JSON.parse(out.trim().split("\n").at(-1));
  return { seed, solvedAt: done.solved_at_steps, wallMs: done.wall_ms };
});
const solved = cli.filter((r) => r.solvedAt !== null && r.solvedAt <= 100_000);
const cliMedianMs = median(cli.slice(0, 5).map((r) => r.wallMs));

// ---- 2. The widget in headless Chromium ------------------------------------------------------
log("browser: embed.html?w=cartpole-ppo&seed=1..5, Train until solved");
const browser = await launchBrowser({ webgpu: false });
const web = [];
try {
  for (const seed of seeds(5)) {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(`${baseUrl()}embed.html?w=cartpole-ppo&seed=${seed}`);
    await page.waitForFunction(() => customElements.get("ml-cartpole-ppo"));
    const w = page.locator("ml-cartpole-ppo");
    await w.evaluate((el) => el.ready);
    const r = await w.evaluate(
      (el) =>
        new Promise((resolve) => {
          const longTasks = [];
          const obs = new PerformanceObserver((l) =>
            l.getEntries().forEach((e) => longTasks.push(e.duration)),
          );
          obs.observe({ type: "longtask" });
          let frames = 0;
          let on = true;
          const count = () => (frames++, on && requestAnimationFrame(count));
          requestAnimationFrame(count);
          const t0 = performance.now();
          el.addEventListener("progress", (e) => {
            if (!e.detail.done && !e.detail.error) return;
            on = false;
            const ms = performance.now() - t0;
            obs.disconnect();
            resolve({ ms, frames, longTasks, detail: e.detail });
          });
          el.play();
        }),
    );
    web.push({
      seed,
      solvedAt: r.detail.solved_at_steps,
      wallMs: Math.round(r.ms),
      trainMs: Math.round(r.detail.train_ms),
      fps: +((r.frames / r.ms) * 1000).toFixed(1),
      longestTaskMs: Math.round(Math.max(0, ...r.longTasks)),
      longTasksOver50: r.longTasks.filter((d) => d > 50).length,
      errors,
    });
    await context.close();
  }
} finally {
  await browser.close();
}
const webMedianMs = median(web.map((r) => r.wallMs));

// ---- 3. The PyTorch peer ----------------------------------------------------------------------
let peer = null;
if (process.env.CARTPOLE_PEER !== "0") {
  const PY = peerPython(undefined, "torch, gymnasium", log);
  const runs = {};
  for (const preset of ["fast", "rl-zoo"]) {
    log(`peer: benches/cartpole_peer.py --preset ${preset} --seeds 1..5`);
    const out = execFileSync(
      PY,
      [path.join(REPO_ROOT, "benches", "cartpole_peer.py"), "--preset", preset, "--seeds", "1,2,3,4,5"],
      { encoding: "utf8" },
    );
    runs[preset] = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
  }
  const med = (rs) => median(rs.map((r) => (r.solved_at_steps === null ? Infinity : r.wall_s * 1000)));
  const best = Object.keys(runs).reduce((a, b) => (med(runs[a]) <= med(runs[b]) ? a : b));
  peer = {
    runs,
    best,
    medianMs: med(runs[best]),
    medians: Object.fromEntries(Object.keys(runs).map((k) => [k, med(runs[k])])),
  };
}

// ---- Report -----------------------------------------------------------------------------------
const mark = (ok) => (ok ? "ok" : "MISSED");
const ratio = peer ? peer.medianMs / webMedianMs : null;
const rows = [
  ["cartpole-ppo benchmark", "result", "target", "status"],
  [
    "solved within 100,000 env steps (CLI, seeds 1-10)",
    `${solved.length} of 10; median ${median(cli.map((r) => r.solvedAt ?? Infinity))} steps`,
    ">= 9 of 10",
    mark(solved.length >= 9),
  ],
  ["wall time to solve, CLI (release), median seeds 1-5", fmtS(cliMedianMs), "", ""],
  [
    "wall time to solve, widget in headless Chromium, median seeds 1-5",
    fmtS(webMedianMs),
    "<= 3 s",
    mark(webMedianMs <= 3000),
  ],
  peer
    ? [
        `wall time to solve, PyTorch peer (preset ${peer.best}), median seeds 1-5`,
        fmtS(peer.medianMs),
        "",
        "",
      ]
    : ["wall time to solve, PyTorch peer", "skipped (CARTPOLE_PEER=0)", "", ""],
  peer
    ? ["speed-up of the browser over the PyTorch peer", `${ratio.toFixed(1)}x`, ">= 5x", mark(ratio >= 5)]
    : ["speed-up of the browser over the PyTorch peer", "n/a", ">= 5x", ""],
];
console.log("");
console.log(
  `cartpole-ppo benchmarks: ${new Date().toISOString()}, ${info.cpu}, ${info.cores} cores, load average ${info.loadAverage1m} at the start`,
);
console.log(table(rows));
console.log(
  `CLI runs: ${cli.map((r) => `seed ${r.seed}: ${r.solvedAt} steps, ${Math.round(r.wallMs)} ms`).join("; ")}`,
);
console.log(
  `browser runs: ${web
    .map(
      (r) =>
        `seed ${r.seed}: ${r.solvedAt} steps, ${r.wallMs} ms (training ${r.trainMs} ms, ${r.fps} fps, longest task ${r.longestTaskMs} ms)`,
    )
    .join("; ")}`,
);
if (peer) {
  for (const [preset, rs] of Object.entries(peer.runs)) {
    console.log(
      `peer ${preset}: ${rs.map((r) => `seed ${r.seed}: ${r.solved_at_steps} steps, ${r.wall_s.toFixed(1)} s`).join("; ")} (torch ${rs[0].torch}, gymnasium ${rs[0].gymnasium}, ${rs[0].threads} thread)`,
    );
  }
}
const out = path.join(REPO_ROOT, "bench-out");
mkdirSync(out, { recursive: true });
writeFileSync(
  path.join(out, "cartpole.json"),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      machine: info,
      loadAverageEnd: machine().loadAverage1m,
      cli,
      web,
      peer,
    },
    null,
    2,
  ) + "\n",
);
log(`results: bench-out/cartpole.json (load average at the end ${machine().loadAverage1m})`);
const missed = [
  solved.length < 9 && "sample efficiency",
  webMedianMs > 3000 && "browser wall time",
  peer && ratio < 5 && "speed-up over PyTorch",
  web.some((r) => r.errors.length) && "page errors",
].filter(Boolean);
if (missed.length) {
  console.log(`cartpole targets missed: ${missed.join(", ")}`);
  if (process.env.BENCH_STRICT === "1") process.exit(1);
} else {
  console.log("cartpole: all targets met");
}
