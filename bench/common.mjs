// Shared bits of the benchmark scripts: machine description, statistics, formatting.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT } from "../tests/e2e/browser.mjs";

export { REPO_ROOT };
export const WWW = path.join(REPO_ROOT, "www");

/** 1 KB = 1000 bytes throughout the benchmarks (the budget is 400 KB = 400,000 bytes). */
export const KB = 1000;

export function kb(bytes, digits = 1) {
  return `${(bytes / KB).toFixed(digits)} KB`;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Least-squares line y = a + b x: { slope: b, intercept: a, r2 }. */
export function linearFit(xs, ys) {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const r2 = sxx === 0 || syy === 0 ? 0 : (sxy * sxy) / (sxx * syy);
  return { slope, intercept: my - slope * mx, r2 };
}

export function machine() {
  let cpu = os.cpus()[0]?.model ?? "unknown";
  try {
    const m = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.+)$/m);
    if (m) cpu = m[1].trim();
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()}`,
    // Other work on the machine skews the timings; recorded with every run.
    loadAverage1m: +os.loadavg()[0].toFixed(2),
    node: process.version,
  };
}

/** A plain-text table: rows of equal-length string arrays, the first row the header. */
export function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  const line = (r) =>
    r
      .map((cell, c) => String(cell).padEnd(widths[c]))
      .join("  ")
      .trimEnd();
  return [line(rows[0]), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

/** True when the module is the script node was started with. */
export function isMain(importMetaUrl) {
  return process.argv[1] && path.resolve(process.argv[1]) === new URL(importMetaUrl).pathname;
}

/**
 * The Python a PyTorch peer runs with: `given` (a path from the environment) as it is, or
 * target/bench-venv, created and filled from benches/requirements.txt the first time, until
 * it can import `modules` (e.g. "torch" or "torch, gymnasium").
 */
export function peerPython(given, modules, log) {
  if (given) return given;
  const venv = path.join(REPO_ROOT, "target", "bench-venv");
  const py = path.join(venv, "bin", "python");
  const ready = () =>
    existsSync(py) && spawnSync(py, ["-c", `import ${modules}`], { stdio: "ignore" }).status === 0;
  if (!ready()) {
    log("peer: installing benches/requirements.txt into target/bench-venv (once; torch is large)");
    if (!existsSync(py)) execFileSync("python3", ["-m", "venv", venv], { stdio: "inherit" });
    const req = path.join(REPO_ROOT, "benches", "requirements.txt");
    execFileSync(py, ["-m", "pip", "install", "-q", "-r", req], { stdio: "inherit" });
  }
  return py;
}
