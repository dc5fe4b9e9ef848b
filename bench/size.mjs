// Benchmark 1: download size. The wasm module raw and gzip -9, and the gzip total of
// what a page needs for a widget (www/mlplay.js + the wasm-bindgen JS in www/pkg + the
// wasm), against the 400 KB gzip budget. Each file is gzipped on its own, as a server
// would send it. Standalone: node bench/size.mjs (after ./build.sh build).

import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { KB, WWW, isMain, kb, table } from "./common.mjs";

export const BUDGET_GZIP_BYTES = 400 * KB;

export function gzipSize(buf) {
  return gzipSync(buf, { level: 9 }).length;
}

function jsFilesUnder(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...jsFilesUnder(p));
    else if (entry.name.endsWith(".js")) out.push(p);
  }
  return out;
}

export function measureSizes() {
  const wasmPath = path.join(WWW, "pkg", "mlplay_bg.wasm");
  if (!existsSync(wasmPath)) throw new Error(`${wasmPath} is missing: run ./build.sh build first`);
  const files = [path.join(WWW, "mlplay.js"), ...jsFilesUnder(path.join(WWW, "pkg")).sort(), wasmPath];
  const rows = files.map((f) => {
    const buf = readFileSync(f);
    return { file: path.relative(WWW, f), raw: buf.length, gzip: gzipSize(buf) };
  });
  const wasm = rows.find((r) => r.file === path.join("pkg", "mlplay_bg.wasm"));
  const total = {
    raw: rows.reduce((s, r) => s + r.raw, 0),
    gzip: rows.reduce((s, r) => s + r.gzip, 0),
  };
  return {
    files: rows,
    wasm: { raw: wasm.raw, gzip: wasm.gzip },
    total,
    budgetGzip: BUDGET_GZIP_BYTES,
    withinBudget: total.gzip <= BUDGET_GZIP_BYTES,
  };
}

if (isMain(import.meta.url)) {
  const r = measureSizes();
  console.log(
    table([
      ["file (under www/)", "raw", "gzip -9"],
      ...r.files.map((f) => [f.file, kb(f.raw), kb(f.gzip)]),
      ["total", kb(r.total.raw), kb(r.total.gzip)],
    ]),
  );
  console.log(`budget ${kb(r.budgetGzip, 0)} gzip: ${r.withinBudget ? "within" : "OVER"}`);
}
