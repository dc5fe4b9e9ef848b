// mlplay.js: the one entry point a course site loads. It loads the wasm module from ./pkg/
// (relative to this file, so www/ can be copied to any static host) and registers every
// widget in the Rust registry as a custom element <ml-NAME>.
//
// One element = one wasm Handle with its own parameters and data; the element owns its
// shadow DOM, sliders, canvases and lifecycle. The math, the parameter table and the
// drawing are Rust; this file is only the glue a custom element needs.

import init, { registry, Handle, lastPanic } from "./pkg/mlplay.js";

const here = new URL(".", import.meta.url);
const darkScheme = matchMedia("(prefers-color-scheme: dark)");
const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");
/** With reduced motion, a training widget redraws at most this often (ms) instead of every frame. */
const CALM_REDRAW_MS = 500;

const STYLE = `
:host { display: block; margin: 1.5rem 0; color-scheme: light dark;
  --ml-bg: #ffffff; --ml-fg: #1f2328; --ml-muted: #57606a; --ml-border: #d0d7de;
  --ml-accent: #0072b2; --ml-accent-fg: #ffffff; --ml-warn-bg: #fff4e5; --ml-warn-fg: #6b3a00;
  --ml-hl: #ffe9a8; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
:host([theme="dark"]) { --ml-bg: #16191f; --ml-fg: #e6edf3; --ml-muted: #9aa4af; --ml-border: #30363d;
  --ml-accent: #56b4e9; --ml-accent-fg: #0b1117; --ml-warn-bg: #3a2a12; --ml-warn-fg: #ffd7a8; --ml-hl: #5a4a10; }
@media (prefers-color-scheme: dark) {
  :host(:not([theme="light"])) { --ml-bg: #16191f; --ml-fg: #e6edf3; --ml-muted: #9aa4af; --ml-border: #30363d;
    --ml-accent: #56b4e9; --ml-accent-fg: #0b1117; --ml-warn-bg: #3a2a12; --ml-warn-fg: #ffd7a8; --ml-hl: #5a4a10; }
}
:host([hidden]) { display: none; }
.box { background: var(--ml-bg); color: var(--ml-fg); border: 1px solid var(--ml-border);
  border-radius: 10px; padding: 14px 16px; box-sizing: border-box; max-width: 100%; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; }
.badge { font-size: 0.78rem; color: var(--ml-muted); border: 1px solid var(--ml-border); border-radius: 999px;
  padding: 1px 8px; font-variant-numeric: tabular-nums; }
.badge[hidden] { display: none; }
h2 { font-size: 1.1rem; margin: 0; }
.summary { color: var(--ml-muted); margin: 4px 0 8px; font-size: 0.92rem; }
.equation { overflow-x: auto; padding: 4px 0; font-size: 1.05rem; }
.equation math { margin: 4px 0; }
.equation [data-key] { border-radius: 3px; padding: 0 1px; }
.equation [data-key].hl, .values span.hl { background: var(--ml-hl); }
.values { color: var(--ml-muted); font-size: 0.88rem; display: flex; flex-wrap: wrap; gap: 2px 14px; }
.values b { color: var(--ml-fg); font-weight: 600; font-variant-numeric: tabular-nums; }
.controls { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 6px 18px; margin: 10px 0; }
details.more { margin: 4px 0 8px; }
details.more > summary { cursor: pointer; font-size: 0.9rem; color: var(--ml-muted); width: max-content; }
details.more > summary:focus-visible { outline: 2px solid var(--ml-accent); outline-offset: 2px; }
.ctl { display: grid; grid-template-columns: 1fr auto; align-items: center; gap: 0 8px; }
.ctl label { font-size: 0.9rem; }
.ctl output { font-variant-numeric: tabular-nums; font-size: 0.9rem; min-width: 3.5em; text-align: right; }
.ctl input, .ctl select { grid-column: 1 / -1; width: 100%; margin: 2px 0; accent-color: var(--ml-accent); }
select { font: inherit; font-size: 0.88rem; color: var(--ml-fg); background: var(--ml-bg); border: 1px solid var(--ml-border); border-radius: 6px; padding: 2px 4px; }
.trainer { align-items: center; }
.trainer progress { flex: 1 1 120px; accent-color: var(--ml-accent); }
.progress-text { font-size: 0.85rem; color: var(--ml-muted); font-variant-numeric: tabular-nums; }
.ctl[hidden] { display: none; }
.toolbar { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0; }
button { font: inherit; font-size: 0.85rem; color: var(--ml-fg); background: transparent;
  border: 1px solid var(--ml-border); border-radius: 6px; padding: 3px 10px; cursor: pointer; min-height: 28px; }
button:hover { border-color: var(--ml-accent); }
button:focus-visible, input:focus-visible, textarea:focus-visible { outline: 2px solid var(--ml-accent); outline-offset: 2px; }
.panel { margin: 10px 0 4px; }
.panel h3 { font-size: 0.95rem; margin: 0 0 4px; font-weight: 600; }
.panel canvas { display: block; width: 100%; border-radius: 6px; }
.panel .toolbar { justify-content: flex-end; margin: 2px 0 0; }
.notices:empty { display: none; }
.notices { background: var(--ml-warn-bg); color: var(--ml-warn-fg); border-radius: 6px; padding: 6px 10px; margin: 8px 0;
  font-size: 0.88rem; display: flex; flex-wrap: wrap; align-items: flex-start; gap: 4px 10px; }
.notices ul { margin: 0; padding-left: 18px; flex: 1 1 260px; }
.error { background: #ffebe9; color: #82071e; border: 1px solid #ff8182; border-radius: 6px; padding: 8px 10px; margin: 8px 0; }
.error[hidden], .share-panel[hidden] { display: none; }
.share-panel { border: 1px dashed var(--ml-border); border-radius: 6px; padding: 8px 10px; margin: 6px 0; }
.share-panel label { display: block; font-size: 0.85rem; color: var(--ml-muted); margin-top: 4px; }
.text-input { border: 1px solid var(--ml-border); border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
.text-input summary { cursor: pointer; font-size: 0.92rem; font-weight: 600; }
.text-input p { color: var(--ml-muted); font-size: 0.85rem; margin: 4px 0; }
.text-input textarea { width: 100%; box-sizing: border-box; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace;
  background: var(--ml-bg); color: var(--ml-fg); border: 1px solid var(--ml-border); border-radius: 4px; padding: 4px 6px; }
.text-status { font-size: 0.85rem; color: var(--ml-muted); align-self: center; }
.share-panel textarea, .share-panel input { width: 100%; box-sizing: border-box; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace;
  background: var(--ml-bg); color: var(--ml-fg); border: 1px solid var(--ml-border); border-radius: 4px; padding: 4px 6px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.loading { color: var(--ml-muted); font-size: 0.9rem; }
@media (prefers-reduced-motion: no-preference) { button { transition: border-color 0.15s; } }
@media (max-width: 480px) { .box { padding: 10px; } .controls { grid-template-columns: 1fr; } .equation { font-size: 0.85rem; } }
`;

/// Escape text for an HTML attribute or text node.
const esc = (s) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );

// A log-scale slider (`p.log`) moves in steps of LOG_STEP in log10(value), about 12% per
// notch, and rounds what it sets to two significant figures (10000, 11000, ..., 500000), so
// every notch changes the value. Attributes, URLs and the JS API still set exact values.
const LOG_STEP = 0.05;
const sliderPos = (p, v) => (p.log ? Math.log10(v) : v);
function sliderValue(p, pos) {
  if (!p.log) return pos;
  const v = Math.min(p.max, Math.max(p.min, Number((10 ** Number(pos)).toPrecision(2))));
  return String(v);
}

function download(root, name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  root.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/// Base class of every widget element; one subclass per registry entry supplies `spec`.
class MlWidget extends HTMLElement {
  #handle = null; // wasm Handle, created on first need, freed on disconnect
  #query = null; // parameters kept across a disconnect / reconnect
  #customText = null; // text data given through setText, kept across a disconnect / reconnect
  #notices = new Map(); // key -> message
  #visible = false;
  #frame = 0;
  #failed = false;
  #observers = [];
  #playing = false;
  #loop = 0;
  #lastFrame = 0; // time of the previous animation frame (ms), 0 when the loop is idle
  #budget = 8; // ms of training per frame: the page stays at display rate
  #drawnAt = 0;
  #background = 0; // animation frame of a non-trainer's background work
  #fetched = new Set(); // resource paths asked for by this handle's view
  #ready;
  #resolveReady;

  constructor() {
    super();
    this.#ready = new Promise((resolve) => (this.#resolveReady = resolve));
    this.attachShadow({ mode: "open" });
    this.#build();
  }

  get spec() {
    return this.constructor.spec;
  }

  /** Resolves once the widget has drawn for the first time and its controls work. */
  get ready() {
    return this.#ready;
  }

  #build() {
    const spec = this.spec;
    const id = (k) => `ml-${k}`;
    const input = (p) =>
      p.choices.length
        ? `<select id="${id(p.key)}" data-key="${p.key}" aria-describedby="${id(p.key)}-doc">${p.choices
            .map((c, i) => `<option value="${i}">${esc(c)}</option>`)
            .join("")}</select>`
        : `<input type="range" id="${id(p.key)}" data-key="${p.key}" min="${sliderPos(p, p.min)}"
            max="${sliderPos(p, p.max)}" step="${p.log ? LOG_STEP : p.step}" value="${sliderPos(p, p.default)}"
            aria-describedby="${id(p.key)}-doc">`;
    const control = (p) => `<div class="ctl" data-key="${p.key}">
          <label for="${id(p.key)}" title="${esc(p.doc)}">${esc(p.label)}</label>
          <output for="${id(p.key)}" data-key="${p.key}"></output>
          ${input(p)}
          <span id="${id(p.key)}-doc" hidden>${esc(p.doc)}</span>
        </div>`;
    // Widgets with many parameters name how many come first; the rest fold away.
    const primary = spec.primary ?? spec.params.length;
    const more = spec.params.slice(primary);
    const controls = `<div class="controls">${spec.params.slice(0, primary).map(control).join("")}</div>${
      more.length
        ? `<details class="more"><summary>More settings (${more.length})</summary>
            <div class="controls">${more.map(control).join("")}</div></details>`
        : ""
    }`;
    const trainer = spec.trainer
      ? `<div class="toolbar trainer" role="group" aria-label="Training">
          <button data-action="play" aria-pressed="false">Train</button>
          <button data-action="step">Step</button>
          <button data-action="restart">Restart</button>
          ${spec.load ? `<button data-action="load">${esc(spec.load)}</button><input type="file" accept=".json,application/json" data-action="load-file" hidden>` : ""}
          <label class="speed">Speed <select data-action="speed">
            <option value="2">gentle</option><option value="4">normal</option><option value="8" selected>full</option>
          </select></label>
          <progress max="1" value="0" aria-label="Training progress"></progress>
          <span class="progress-text" aria-live="off"></span>
        </div>`
      : "";
    const text = spec.text_input
      ? `<details class="text-input">
          <summary>${esc(spec.text_input.label)}</summary>
          <p id="ml-text-doc">${esc(spec.text_input.doc)}</p>
          <textarea rows="8" spellcheck="false" data-text aria-label="${esc(spec.text_input.label)}"
            aria-describedby="ml-text-doc"></textarea>
          <div class="toolbar">
            <button data-action="text-apply">Apply</button>
            <button data-action="text-load">Load file…</button>
            <input type="file" accept="${esc(spec.text_input.accept)}" data-text-file hidden>
            <button data-action="text-clear">Use generated data</button>
            <span class="text-status" role="status"></span>
          </div>
        </details>`
      : "";
    const panels = spec.panels
      .map(
        (title, i) => `<figure class="panel" style="margin:10px 0 4px">
          <h3 id="ml-panel-${i}">${esc(title)}</h3>
          <canvas data-panel="${i}" role="img" aria-labelledby="ml-panel-${i}" aria-describedby="ml-desc-${i}"${
            spec.keys?.[i]
              ? ` tabindex="0" data-keys title="${esc(spec.keys[i])}" aria-roledescription="interactive figure"`
              : ""
          }${spec.pointer?.[i] ? ` data-pointer title="${esc(spec.pointer[i])}" style="touch-action:none"` : ""}${
            spec.hover?.[i] ? ` data-hover title="${esc(spec.hover[i])}"` : ""
          }></canvas>
          <p id="ml-desc-${i}" class="sr-only"></p>
          <div class="toolbar">
            <button data-export="png" data-panel="${i}" aria-label="Download panel ${i + 1} as PNG">PNG</button>
            <button data-export="csv" data-panel="${i}" aria-label="Download panel ${i + 1} data as CSV">CSV</button>
            <button data-export="json" data-panel="${i}" aria-label="Download panel ${i + 1} data as JSON">JSON</button>
          </div>
        </figure>`,
      )
      .join("");
    const values = spec.params
      .map((p) => `<span data-key="${p.key}">${esc(p.symbol)} = <b data-key="${p.key}"></b></span>`)
      .join("");
    this.shadowRoot.innerHTML = `<style>${STYLE}</style>
      <div class="box" part="box">
        <header><h2>${esc(spec.title)}</h2><span class="badge" title="What computes this figure" hidden></span></header>
        <p class="summary">${esc(spec.summary)}</p>
        <div class="equation">${spec.equation}</div>
        <div class="values" aria-live="off">${values}</div>
        <div class="notices" role="status" aria-live="polite"></div>
        <div class="error" role="alert" hidden></div>
        ${controls}
        <div class="toolbar">
          <button data-action="reset" title="Back to the starting values of this figure">Reset</button>
          <button data-action="share" aria-expanded="false">Share</button>
          <button data-action="embed" aria-expanded="false">Embed</button>
        </div>
        <div class="share-panel" hidden></div>
        ${trainer}
        ${text}
        ${panels}
      </div>`;
    const root = this.shadowRoot;
    root.addEventListener("input", (e) => {
      const key = e.target.dataset?.key;
      const p = this.spec.params.find((q) => q.key === key);
      if (p && e.target.type === "range") this.#set(key, sliderValue(p, e.target.value));
      else if (p && e.target.localName === "select") this.#set(key, e.target.value);
    });
    root.addEventListener("change", (e) => {
      if (e.target.dataset?.action === "speed") this.#budget = Number(e.target.value);
      if (e.target.matches?.("[data-text-file]")) this.#loadFile(e.target);
      if (e.target.dataset?.action === "load-file" && e.target.files?.[0]) {
        e.target.files[0].text().then((text) => this.load(text));
        e.target.value = "";
      }
    });
    root.querySelector("details.text-input")?.addEventListener("toggle", (e) => {
      if (e.target.open) this.#fillText();
    });
    // Panels that take keys (a simulation to drive): keys go to the view while focused.
    for (const type of ["keydown", "keyup"]) {
      root.addEventListener(type, (e) => {
        const canvas = e.target.closest?.("canvas[data-keys]");
        if (!canvas || e.altKey || e.ctrlKey || e.metaKey) return;
        const used = this.#guard(() =>
          this.#h().key(Number(canvas.dataset.panel), e.key, type === "keydown"),
        );
        if (used) {
          e.preventDefault();
          this.#train();
          // Views that do not animate (picking a row) still show the key at once.
          if (!this.#playing && !this.#animating()) this.#render({ only: [Number(canvas.dataset.panel)] });
        }
      });
    }
    root.addEventListener("focusout", (e) => {
      const canvas = e.target.closest?.("canvas[data-keys]");
      // Focus left the panel: every key counts as released.
      if (canvas && this.#handle)
        this.#guard(() => this.#h().key(Number(canvas.dataset.panel), "Blur", false));
    });
    // Panels that take pointer input (drawing points): events in the canvas's CSS pixels.
    for (const type of ["pointerdown", "pointermove", "pointerup"]) {
      root.addEventListener(type, (e) => {
        const canvas = e.target.closest?.("canvas[data-pointer]");
        if (!canvas || (type === "pointermove" && !e.buttons)) return;
        if (type === "pointerdown") canvas.setPointerCapture?.(e.pointerId);
        const r = canvas.getBoundingClientRect();
        const panel = Number(canvas.dataset.panel);
        const used = this.#guard(() =>
          this.#h().pointer(panel, type.slice(7), e.clientX - r.left, e.clientY - r.top, r.width, r.height),
        );
        if (!used) return;
        e.preventDefault();
        if (type === "pointerup") this.#changed("pointer");
        else this.#render({ only: [panel] });
      });
    }
    // Panels that follow the pointer without a press (a tap on touch screens; scrolling stays).
    for (const type of ["pointermove", "pointerdown"]) {
      root.addEventListener(type, (e) => {
        const canvas = e.target.closest?.("canvas[data-hover]");
        if (!canvas) return;
        const r = canvas.getBoundingClientRect();
        const panel = Number(canvas.dataset.panel);
        const used = this.#guard(() =>
          this.#h().pointer(panel, "hover", e.clientX - r.left, e.clientY - r.top, r.width, r.height),
        );
        if (used) this.#render({ only: [panel] });
      });
    }
    root.addEventListener("click", (e) => this.#onClick(e));
    for (const ev of ["focusin", "pointerover"]) {
      root.addEventListener(ev, (e) => this.#highlight(e.target.closest?.("[data-key]")?.dataset.key));
    }
    for (const ev of ["focusout", "pointerout"]) root.addEventListener(ev, () => this.#highlight(null));
  }

  #highlight(key) {
    for (const el of this.shadowRoot.querySelectorAll(".equation [data-key], .values span[data-key]")) {
      el.classList.toggle("hl", el.dataset.key === key);
    }
  }

  connectedCallback() {
    const io = new IntersectionObserver(
      (entries) => {
        this.#visible = entries.some((e) => e.isIntersecting);
        if (this.#visible) this.#start();
        else {
          cancelAnimationFrame(this.#background);
          this.#background = 0;
        }
        if (this.#visible) this.#train();
      },
      { rootMargin: "200px" },
    );
    io.observe(this);
    const ro = new ResizeObserver(() => this.#visible && this.#schedule());
    ro.observe(this);
    const onScheme = () => this.#schedule();
    darkScheme.addEventListener("change", onScheme);
    this.#observers = [
      () => io.disconnect(),
      () => ro.disconnect(),
      () => darkScheme.removeEventListener("change", onScheme),
    ];
  }

  disconnectedCallback() {
    for (const stop of this.#observers) stop();
    this.#observers = [];
    cancelAnimationFrame(this.#frame);
    cancelAnimationFrame(this.#loop);
    cancelAnimationFrame(this.#background);
    this.#frame = 0;
    this.#loop = 0;
    this.#background = 0;
    this.#visible = false;
    if (this.#handle) {
      this.#query = this.#handle.query();
      this.#handle.free();
      this.#handle = null;
      this.#fetched.clear();
    }
  }

  static get observedAttributes() {
    return [...this.spec.params.map((p) => p.key), "hide", "theme"];
  }

  attributeChangedCallback(name, _old, value) {
    if (name === "hide") return this.#applyHide();
    if (name === "theme") return this.#schedule();
    // Before the first handle exists, #h() reads every attribute when it creates it.
    if (value !== null && (this.#handle || this.#query !== null)) this.#set(name, value);
  }

  /** The wasm handle, created on first need so `state` works before the widget is drawn. */
  #h() {
    if (this.#failed) throw new Error("this widget stopped after an internal error");
    if (!this.#handle) {
      this.#handle = new Handle(this.spec.name);
      if (this.#query !== null) {
        for (const n of JSON.parse(this.#handle.applyQuery(this.#query))) this.#notices.set(n.key, n.message);
      } else this.#applyAttributes();
      if (this.#customText !== null) this.#handle.setText(this.#customText);
    }
    return this.#handle;
  }

  /** The author's attributes, through the parameter table (the starting state and what Reset returns to). */
  #applyAttributes() {
    for (const p of this.spec.params) {
      const v = this.getAttribute(p.key);
      if (v !== null) this.#note(p.key, this.#handle.set(p.key, v));
    }
  }

  #guard(fn) {
    try {
      return fn();
    } catch (err) {
      this.#fail(err);
      return undefined;
    }
  }

  #fail(err) {
    this.#failed = true;
    const panic = lastPanic();
    const msg = panic || (err && err.message) || String(err);
    console.error(`mlplay <${this.localName}>:`, msg);
    const box = this.shadowRoot.querySelector(".error");
    box.hidden = false;
    box.textContent = `This widget hit an internal error and stopped: ${msg}. Reload the page to start again; other widgets keep working.`;
  }

  #note(key, message) {
    if (message) this.#notices.set(key, message);
    else this.#notices.delete(key);
  }

  #set(key, raw) {
    if (!this.#handle && this.#query !== null) {
      // Disconnected: keep the change in the saved state that reconnecting restores.
      const q = new URLSearchParams(this.#query);
      q.set(key, String(raw));
      this.#query = q.toString();
      return;
    }
    this.#guard(() => {
      this.#note(key, this.#h().set(key, String(raw)));
      this.#changed(key);
    });
  }

  /** Apply a URL query string (`eps=0.1&seed=4`), as the iframe route and share links do. */
  applyQuery(query) {
    this.#guard(() => {
      for (const n of JSON.parse(this.#h().applyQuery(String(query)))) this.#notices.set(n.key, n.message);
      this.#changed(null);
    });
  }

  #changed(key) {
    this.#syncControls();
    this.#schedule();
    const params = this.#guard(() => JSON.parse(this.#h().params()));
    this.dispatchEvent(
      new CustomEvent("change", {
        detail: { key, value: key ? params?.[key] : undefined, params },
        bubbles: true,
        composed: true,
      }),
    );
  }

  #syncControls() {
    const h = this.#h();
    const root = this.shadowRoot;
    for (const p of this.spec.params) {
      const v = h.get(p.key);
      const input = root.querySelector(`input[data-key="${p.key}"], select[data-key="${p.key}"]`);
      const pos = sliderPos(p, v);
      if (input && Number(input.value) !== pos) input.value = String(pos);
      const text = h.format(p.key);
      if (input && p.log) input.setAttribute("aria-valuetext", text);
      root.querySelector(`output[data-key="${p.key}"]`).value = text;
      const b = root.querySelector(`.values b[data-key="${p.key}"]`);
      if (b) b.textContent = text;
    }
    const box = root.querySelector(".notices");
    if (this.#notices.size === 0) box.replaceChildren();
    else {
      box.innerHTML = `<ul>${[...this.#notices.values()].map((m) => `<li class="notice">${esc(m)}</li>`).join("")}</ul>
        <button data-action="dismiss">Dismiss</button>`;
    }
  }

  #applyHide() {
    const hidden = new Set((this.getAttribute("hide") || "").split(",").map((s) => s.trim()));
    for (const ctl of this.shadowRoot.querySelectorAll(".ctl")) ctl.hidden = hidden.has(ctl.dataset.key);
    const more = this.shadowRoot.querySelector("details.more");
    if (more) more.hidden = [...more.querySelectorAll(".ctl")].every((c) => c.hidden);
  }

  #start() {
    this.#guard(() => {
      this.#h();
      this.#applyHide();
      this.#syncControls();
      this.#schedule();
    });
  }

  #schedule() {
    if (!this.#visible || this.#frame || this.#failed) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#render();
      this.#train(); // starts the frame loop if the view animates
    });
  }

  #dark() {
    const t = this.getAttribute("theme");
    return t === "dark" || (t !== "light" && darkScheme.matches);
  }

  /** Draws every panel; `only`: just those panels (background work that changed a few);
   *  `onlyChanged`: just those whose data or size changed (animation and training frames). */
  #render({ only = null, onlyChanged = false } = {}) {
    this.#guard(() => {
      const h = this.#h();
      const dpr = window.devicePixelRatio || 1;
      for (const canvas of this.shadowRoot.querySelectorAll("canvas[data-panel]")) {
        const panel = Number(canvas.dataset.panel);
        if (only && !only.includes(panel)) continue;
        const width = Math.max(240, Math.round(canvas.parentElement.clientWidth || 600));
        const height = Math.round(h.panelHeight(panel, width));
        const [w, ht] = [Math.round(width * dpr), Math.round(height * dpr)];
        if (onlyChanged && canvas.width === w && canvas.height === ht && !h.changed(panel)) continue;
        canvas.style.height = `${height}px`;
        canvas.width = w;
        canvas.height = ht;
        h.draw(panel, canvas, this.#dark(), width, height);
        this.shadowRoot.getElementById(`ml-desc-${panel}`).textContent = h.describe(panel);
      }
      const badge = this.shadowRoot.querySelector(".badge");
      const backend = h.backend();
      if (badge.textContent !== backend) badge.textContent = backend;
      badge.hidden = !backend;
    });
    this.#resolveReady();
    this.#fetchResource();
    this.#work();
  }

  /** A file the view asks for (default weights): fetched once per path, relative to this file. */
  #fetchResource() {
    if (this.#failed) return;
    const path = this.#guard(() => this.#h().resource());
    if (!path || this.#fetched.has(path)) return;
    this.#fetched.add(path);
    const give = (bytes, error) => {
      if (this.#failed || !this.#handle) return;
      this.#guard(() => this.#note("resource", this.#h().provide(path, bytes, error)));
      this.#syncControls();
      this.#render();
      this.#train();
    };
    fetch(new URL(path, here))
      .then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then(
        (buf) => give(new Uint8Array(buf), ""),
        (err) => give(new Uint8Array(0), String(err?.message || err)),
      );
  }

  /** Background work of a widget that is not a trainer (a fit spread over frames): one
   *  slice per animation frame while it is on screen, then a redraw of the panels the
   *  progress names (at most twice a second under reduced motion, and always the last). */
  #work() {
    if (this.spec.trainer || this.#background || !this.#visible || this.#failed) return;
    if (!this.#guard(() => this.#h().pending())) return;
    this.#background = requestAnimationFrame(() => {
      this.#background = 0;
      const progress = this.#trainOnce();
      const now = performance.now();
      const going = progress && !progress.done && !progress.error;
      if (reducedMotion.matches && going && now - this.#drawnAt < CALM_REDRAW_MS) {
        this.#work();
        return;
      }
      this.#drawnAt = now;
      this.#render({ only: Array.isArray(progress?.panels) ? progress.panels : null });
    });
  }

  #onClick(e) {
    const button = e.target.closest("button");
    if (!button) return;
    const action = button.dataset.action;
    const exp = button.dataset.export;
    if (action === "reset") {
      this.#guard(() => {
        this.#h().reset();
        this.#notices.clear();
        this.#applyAttributes();
        this.#changed(null);
      });
    } else if (action === "play") {
      this.#playing = !this.#playing;
      this.#syncTrainer();
      if (this.#playing) this.#train();
    } else if (action === "step") {
      this.#playing = false;
      this.#syncTrainer();
      this.#trainOnce();
      this.#schedule();
    } else if (action === "restart") {
      this.#guard(() => {
        this.#h().restart();
        this.#notices.delete("training");
        this.#syncControls();
        this.#schedule();
      });
    } else if (action === "text-apply") {
      this.setText(this.shadowRoot.querySelector("[data-text]").value);
    } else if (action === "text-clear") {
      this.setText("");
    } else if (action === "text-load") {
      this.shadowRoot.querySelector("[data-text-file]").click();
    } else if (action === "load") {
      this.shadowRoot.querySelector("[data-action=load-file]")?.click();
    } else if (action === "dismiss") {
      this.#notices.clear();
      this.#syncControls();
    } else if (action === "share" || action === "embed") {
      this.#toggleShare(action, button);
    } else if (action === "copy") {
      const field = this.shadowRoot.getElementById(button.dataset.target);
      field.select();
      navigator.clipboard?.writeText(field.value).then(
        () => (button.textContent = "Copied"),
        () => (button.textContent = "Selected: press Ctrl+C"),
      );
    } else if (exp) {
      this.#export(exp, Number(button.dataset.panel));
    }
  }

  /**
   * The frame loop, only while on screen: one slice of training per animation frame while
   * playing, and the view's own animation (`tick`) while it wants frames; only the panels
   * that changed are redrawn. It stops when neither is wanted.
   */
  #train() {
    if (this.#loop || !this.#visible || this.#failed) return;
    if (!this.#playing && !this.#animating()) return;
    this.#loop = requestAnimationFrame((now) => {
      this.#loop = 0;
      const dt = this.#lastFrame ? Math.min(now - this.#lastFrame, 100) : 1000 / 60;
      this.#lastFrame = now;
      let finished = false;
      if (this.#playing) {
        const progress = this.#trainOnce();
        if (!progress || progress.done || progress.error) {
          this.#playing = false;
          this.#syncTrainer();
          finished = true;
        }
      }
      this.#guard(() => this.#h().tick(dt));
      // With reduced motion the panels follow at most every CALM_REDRAW_MS (and at the end).
      const t = performance.now();
      if (finished || !reducedMotion.matches || t - this.#drawnAt >= CALM_REDRAW_MS) {
        this.#drawnAt = t;
        this.#render({ onlyChanged: true });
      }
      if (this.#playing || this.#animating()) this.#train();
      else this.#lastFrame = 0;
    });
  }

  #animating() {
    return !this.#failed && this.#guard(() => this.#h().animating()) === true;
  }

  #trainOnce() {
    return this.#guard(() => {
      const text = this.#h().step(this.#budget);
      if (!text) return null;
      const progress = JSON.parse(text);
      const root = this.shadowRoot;
      const bar = root.querySelector("progress");
      if (bar && progress.fraction !== null) bar.value = progress.fraction;
      const label = root.querySelector(".progress-text");
      if (label) label.textContent = progress.text || "";
      if (progress.error) {
        this.#notices.set("training", progress.error);
        this.#syncControls();
      }
      this.dispatchEvent(new CustomEvent("progress", { detail: progress, bubbles: true, composed: true }));
      return progress;
    });
  }

  #syncTrainer() {
    const b = this.shadowRoot.querySelector("[data-action=play]");
    if (!b) return;
    b.setAttribute("aria-pressed", String(this.#playing));
    b.textContent = this.#playing ? "Pause" : "Train";
  }

  /** Trainers: start or resume training (as the Train button does). */
  play() {
    if (!this.spec.trainer) return;
    this.#playing = true;
    this.#syncTrainer();
    this.#train();
  }

  /** Trainers: pause training. */
  pause() {
    this.#playing = false;
    this.#syncTrainer();
  }

  /** Widgets with a text box: the data as text, in the format `setText` reads. */
  get text() {
    return this.#guard(() => this.#h().text()) ?? "";
  }

  /**
   * Widgets with a text box: use `text` as the widget's data ("" goes back to the generated
   * data). Returns {ok, message}; a failure shows a notice and keeps the data in force.
   */
  setText(text) {
    const result = this.#guard(() => JSON.parse(this.#h().setText(String(text))));
    if (!result) return { ok: false, message: "this widget stopped after an internal error" };
    const status = this.shadowRoot.querySelector(".text-status");
    if (result.ok) {
      this.#customText = String(text).trim() ? String(text) : null;
      this.#notices.delete("text");
      if (status) status.textContent = result.message;
      this.#fillText();
    } else {
      this.#notices.set("text", result.message);
      if (status) status.textContent = "";
    }
    this.#syncControls();
    this.#schedule();
    this.dispatchEvent(
      new CustomEvent("change", {
        detail: {
          key: "text",
          value: result.message,
          params: this.#guard(() => JSON.parse(this.#h().params())),
        },
        bubbles: true,
        composed: true,
      }),
    );
    return result;
  }

  #fillText() {
    const area = this.shadowRoot.querySelector("[data-text]");
    if (area) area.value = this.text;
  }

  #loadFile(input) {
    const file = input.files?.[0];
    if (!file) return;
    file.text().then(
      (text) => {
        this.shadowRoot.querySelector("[data-text]").value = text;
        this.setText(text);
        input.value = "";
      },
      (err) => {
        this.#notices.set("text", `could not read ${file.name}: ${err.message || err}`);
        this.#syncControls();
      },
    );
  }

  /**
   * Load a file's text into the widget (saved weights, for widgets with a Load button).
   * Returns null when loaded, or the reason it was refused (also shown as a notice).
   */
  load(text) {
    const err = this.#guard(() => this.#h().load(String(text)));
    if (err) this.#notices.set("load", err);
    else this.#notices.delete("load");
    this.#changed(null);
    return err || null;
  }

  #toggleShare(action, button) {
    const panel = this.shadowRoot.querySelector(".share-panel");
    const open = panel.hidden || panel.dataset.kind !== action;
    for (const b of this.shadowRoot.querySelectorAll("[data-action=share],[data-action=embed]")) {
      b.setAttribute("aria-expanded", String(open && b === button));
    }
    panel.hidden = !open;
    panel.dataset.kind = action;
    if (!open) return;
    const field = (i, label, value, rows) =>
      `<label for="ml-share-${i}">${label}</label>${
        rows > 1
          ? `<textarea id="ml-share-${i}" readonly rows="${rows}">${esc(value)}</textarea>`
          : `<input id="ml-share-${i}" readonly value="${esc(value)}">`
      }<button data-action="copy" data-target="ml-share-${i}">Copy</button>`;
    if (action === "share") {
      panel.innerHTML = field(0, "Link to this exact state (all parameters and the seed)", this.shareUrl, 1);
    } else {
      const s = this.embedSnippets;
      panel.innerHTML = `${field(1, "Script and element (several widgets can share one script tag)", s.script, 3)}
        ${field(2, "Or an iframe", s.iframe, 3)}`;
    }
  }

  #export(kind, panel) {
    const name = `${this.spec.name}-panel${panel + 1}`;
    const root = this.shadowRoot;
    if (kind === "png") {
      root
        .querySelector(`canvas[data-panel="${panel}"]`)
        .toBlob((b) => b && download(root, `${name}.png`, b));
      return;
    }
    this.#guard(() => {
      const h = this.#h();
      const text = kind === "csv" ? h.panelCsv(panel) : h.panelJson(panel);
      const type = kind === "csv" ? "text/csv" : "application/json";
      download(root, `${name}.${kind}`, new Blob([text], { type }));
    });
  }

  /** Set one parameter through the table (what assigning `el.eps`, `el.seed`, ... does). */
  setParam(key, value) {
    this.#set(key, value);
  }

  /** One parameter's value (what the element's `eps`, `seed`, ... properties return). */
  param(key) {
    return this.#guard(() => this.#h().get(key));
  }

  /** Parameters and plotted data as a plain object, plus the notices in force. */
  get state() {
    return this.#guard(() => {
      const s = JSON.parse(this.#h().state());
      s.notices = [...this.#notices].map(([key, message]) => ({ key, message }));
      return s;
    });
  }

  /** A link to the full-page view of this widget in exactly this state. */
  get shareUrl() {
    return new URL(`embed.html?w=${this.spec.name}&${this.#h().query()}`, here).href;
  }

  /** Copy-paste snippets reproducing this widget in this state on another page. */
  get embedSnippets() {
    const attrs = this.#h()
      .query()
      .split("&")
      .map((kv) => kv.split("="))
      .map(([k, v]) => ` ${k}="${v}"`)
      .join("");
    const hide = this.getAttribute("hide");
    const script = `<script type="module" src="${new URL("mlplay.js", here).href}"></script>
<ml-${this.spec.name}${attrs}${hide ? ` hide="${esc(hide)}"` : ""}></ml-${this.spec.name}>`;
    const iframe = `<iframe src="${esc(this.shareUrl)}" title="${esc(this.spec.title)}" width="100%" height="1160" style="border:0" loading="lazy"></iframe>`;
    return { script, iframe };
  }
}

function showLoadFailure(err) {
  console.error("mlplay: the WebAssembly module failed to load:", err);
  for (const el of document.querySelectorAll("*")) {
    if (!el.localName.startsWith("ml-") || el.shadowRoot) continue;
    const root = el.attachShadow({ mode: "open" });
    root.innerHTML = `<p role="alert" style="border:1px solid #ff8182;background:#ffebe9;color:#82071e;padding:8px 10px;border-radius:6px">
      This interactive figure needs WebAssembly, which failed to load (${esc(err.message || err)}).</p>`;
  }
}

/** Every widget in the registry: name, element, title, summary, params, panels. */
export let widgets = [];

try {
  await init({ module_or_path: new URL("pkg/mlplay_bg.wasm", import.meta.url) });
  widgets = JSON.parse(registry());
  for (const spec of widgets) {
    if (customElements.get(spec.element)) continue;
    const cls = class extends MlWidget {
      static spec = spec;
    };
    for (const p of spec.params) {
      Object.defineProperty(cls.prototype, p.key, {
        get() {
          return p.choices.length ? p.choices[this.param(p.key)] : this.param(p.key);
        },
        set(v) {
          this.setParam(p.key, v);
        },
        enumerable: true,
      });
    }
    customElements.define(spec.element, cls);
  }
} catch (err) {
  showLoadFailure(err);
}
