#!/usr/bin/env bash
# mlplay build driver: Rust -> WebAssembly widgets, static site in www/.
#
#   ./build.sh [build]   ensure tools, build www/pkg (wasm + JS glue, wasm-opt -Oz) and the CLI
#   ./build.sh serve     build, then serve www/ on http://127.0.0.1:${PORT:-8000}/
#   ./build.sh test      fmt, clippy (native + wasm), cargo test, build, wasm tests in
#                        Chromium, JS lint, browser end-to-end tests (WebGPU on and off)
#   ./build.sh bench     build, then size / startup / heap benchmarks (docs/BENCHMARKS.md)
#   ./build.sh weights   retrain the diffusion widgets' default weights (www/weights/, CLI)
#
# Tools are installed when missing, quietly (logs under target/build-logs/):
# the wasm32 rustup target and rust-src, wasm-bindgen-cli (pinned, in ${MLPLAY_TOOLS:-~/.cache/mlplay}),
# npm devDependencies (npm ci), and for test/bench the apt packages chromium,
# chromium-driver, mesa-vulkan-drivers. On a ready machine nothing is installed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"

WASM_TARGET=wasm32-unknown-unknown
WB_VERSION=0.2.130
TOOLS=${MLPLAY_TOOLS:-$HOME/.cache/mlplay}
WB_ROOT=$TOOLS/wasm-bindgen-$WB_VERSION
WB_BIN=$WB_ROOT/bin
LOG_DIR=$ROOT/target/build-logs
PKG_DIR=www/pkg
# The wasm is built with its own Cargo profile (Cargo.toml: release, optimised for size).
WASM_PROFILE=wasm-release
WASM_OUT=target/$WASM_TARGET/$WASM_PROFILE/mlplay.wasm
CHROMIUM=/usr/bin/chromium
CHROMEDRIVER_BIN=/usr/bin/chromedriver
LAVAPIPE_ICD=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
# Features the wasm-bindgen output uses (rustc's default wasm32 target features); wasm-opt
# must accept them and may use them. All are supported by every current browser.
WASM_OPT_FEATURES=(
  --enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int
  --enable-sign-ext --enable-reference-types --enable-multivalue --enable-mutable-globals
)

# ---------------------------------------------------------------------------- helpers

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
  printf 'build.sh: error: %s\n' "$1" >&2
  [[ $# -gt 1 ]] && printf 'build.sh: fix: %s\n' "$2" >&2
  exit 1
}

# run_logged NAME HINT CMD... : run CMD with its output in $LOG_DIR/NAME.log; on failure
# print the log and the hint.
run_logged() {
  local name=$1 hint=$2
  shift 2
  mkdir -p "$LOG_DIR"
  local log=$LOG_DIR/$name.log
  if ! "$@" >"$log" 2>&1; then
    printf -- '---- %s ----\n' "$log" >&2
    cat "$log" >&2
    printf -- '---- end of %s ----\n' "$log" >&2
    die "$name failed: $*" "$hint"
  fi
}

# step NAME HINT CMD... : a build/test step with its output shown; on failure say which
# step failed and how to fix or rerun it.
step() {
  local name=$1 hint=$2
  shift 2
  say "$name"
  local rc=0
  "$@" || rc=$?
  if [[ $rc -ne 0 ]]; then
    die "$name failed (exit $rc)" "$hint"
  fi
}

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found" "$2"
}

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $*" "run it as root, then rerun ./build.sh"
  fi
}

# --------------------------------------------------------------------- tool installs

ensure_base() {
  need_cmd cargo "install Rust with rustup: https://rustup.rs"
  need_cmd rustup "install Rust with rustup (https://rustup.rs); the wasm32 target comes from rustup"
  need_cmd node "install Node.js >= 20 (e.g. apt-get install nodejs npm)"
  need_cmd npm "install npm (e.g. apt-get install npm)"
  need_cmd python3 "apt-get install python3"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [[ $major -ge 20 ]] || die "Node.js $(node --version) is too old" "install Node.js >= 20"
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx "$WASM_TARGET"; then
    say "installing the rustup target $WASM_TARGET"
    run_logged rustup-target "check the network and rerun, or run: rustup target add $WASM_TARGET" \
      rustup target add "$WASM_TARGET"
  fi
  # The standard library's source, to compile std for the browser build at opt-level "z"
  # (build_wasm). Without it the build falls back to the prebuilt std, about 22 KB gzip larger.
  if ! rustup component list --installed | grep -q '^rust-src'; then
    say "installing the rustup component rust-src"
    mkdir -p "$LOG_DIR"
    rustup component add rust-src >"$LOG_DIR/rustup-rust-src.log" 2>&1 ||
      note "rustup could not add rust-src ($LOG_DIR/rustup-rust-src.log): the wasm uses the prebuilt std"
  fi
}

ensure_rust_components() {
  local c
  for c in clippy rustfmt; do
    local probe=${c/rustfmt/fmt}
    if ! cargo "$probe" --version >/dev/null 2>&1; then
      say "installing the rustup component $c"
      run_logged "rustup-$c" "run: rustup component add $c" rustup component add "$c"
    fi
  done
}

locked_wasm_bindgen_version() {
  [[ -f Cargo.lock ]] || return 0
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_bindgen() {
  local locked
  locked=$(locked_wasm_bindgen_version)
  if [[ -n $locked && $locked != "$WB_VERSION" ]]; then
    die "Cargo.lock has wasm-bindgen $locked but build.sh pins the CLI at $WB_VERSION" \
      "keep them equal: pin wasm-bindgen = \"=$WB_VERSION\" in Cargo.toml, or change WB_VERSION in build.sh"
  fi
  if [[ -x $WB_BIN/wasm-bindgen && -x $WB_BIN/wasm-bindgen-test-runner ]] &&
    [[ $("$WB_BIN/wasm-bindgen" --version 2>/dev/null) == "wasm-bindgen $WB_VERSION" ]]; then
    return 0
  fi
  say "installing wasm-bindgen-cli $WB_VERSION into $WB_ROOT (takes about 5 minutes, once)"
  mkdir -p "$WB_ROOT"
  run_logged wasm-bindgen-cli "check the network (crates.io) and disk space, then rerun ./build.sh" \
    cargo install wasm-bindgen-cli --version "=$WB_VERSION" --root "$WB_ROOT" --force
}

ensure_node_modules() {
  if [[ ! -d node_modules || ! -f node_modules/.package-lock.json ||
    package-lock.json -nt node_modules/.package-lock.json ]]; then
    say "installing npm devDependencies (npm ci)"
    run_logged npm-ci "check the network (npm registry); package-lock.json must match package.json (run npm install to update it)" \
      npm ci --no-audit --no-fund
  fi
}

ensure_browser() {
  local missing=()
  [[ -x $CHROMIUM ]] || missing+=(chromium)
  [[ -x $CHROMEDRIVER_BIN ]] || missing+=(chromium-driver)
  [[ -f $LAVAPIPE_ICD ]] || missing+=(mesa-vulkan-drivers)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  command -v apt-get >/dev/null 2>&1 ||
    die "missing ${missing[*]} and apt-get is not available" \
      "install Chromium at $CHROMIUM, chromedriver at $CHROMEDRIVER_BIN and Mesa's lavapipe Vulkan driver"
  say "installing apt packages: ${missing[*]}"
  run_logged apt-update "check the network (Debian mirrors) and rerun" \
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  run_logged apt-install "check the network and rerun, or run: apt-get install -y ${missing[*]}" \
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}"
}

ensure_build_tools() {
  ensure_base
  ensure_wasm_target
  ensure_wasm_bindgen
  ensure_node_modules
}

ensure_test_tools() {
  ensure_build_tools
  ensure_rust_components
  ensure_browser
}

# Browser and Mesa environment for test/bench.
browser_env() {
  export XDG_RUNTIME_DIR=$ROOT/target/xdg-runtime
  mkdir -p "$XDG_RUNTIME_DIR"
  chmod 700 "$XDG_RUNTIME_DIR"
  export NO_PROXY=127.0.0.1,localhost
  export no_proxy=$NO_PROXY
}

# ------------------------------------------------------------------------- the build

# The browser build compiles the standard library too (cargo's -Zbuild-std), at the profile's
# opt-level "z" with std's optimize_for_size code paths, and leaves out panic locations
# (-Zlocation-detail=none: a panic still reports its message in the widget, not the file and
# line). Both flags are unstable, so the stable toolchain is asked for them with
# RUSTC_BOOTSTRAP=1, for this one build only; the CLI, the tests and the wasm tests are
# plain stable builds. Together they take the wasm from 399.6 to 377.5 KB gzip
# (docs/BENCHMARKS.md). Without rust-src the prebuilt std is used.
# build_wasm [FEATURES OUT_DIR]: the site's module (features "web", www/pkg) by default;
# ./build.sh bench also builds one with the benchmarks' entry points into www/pkg-bench.
build_wasm() {
  local features=${1:-web} PKG_DIR=${2:-$PKG_DIR}
  local small_std=()
  if rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
    # shellcheck disable=SC2054 # the commas are in cargo arguments, not between elements
    small_std=(
      CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS=-Zlocation-detail=none
      cargo build -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
    )
  else
    note "no rust-src: building the wasm with the prebuilt std (larger)"
    small_std=(cargo build)
  fi
  step "cargo build --lib --profile $WASM_PROFILE --target $WASM_TARGET --features $features" \
    "fix the compile errors above (the web layer is crate/src/web)" \
    env RUSTC_BOOTSTRAP=1 "${small_std[@]}" --lib --profile "$WASM_PROFILE" --target "$WASM_TARGET" \
    --features "$features"
  [[ -f $WASM_OUT ]] || die "$WASM_OUT was not produced" "check crate-type includes cdylib in Cargo.toml"

  say "wasm-bindgen --target web --out-dir $PKG_DIR"
  rm -rf "$PKG_DIR"
  run_logged wasm-bindgen "the wasm-bindgen CLI and library versions must match (both $WB_VERSION)" \
    "$WB_BIN/wasm-bindgen" --target web --out-dir "$PKG_DIR" "$WASM_OUT"

  # The glue is minified (terser, from npm): its JSDoc (editors read mlplay.d.ts), long names
  # and whitespace need not be downloaded (12.2 -> 9.5 KB gzip). Exported names and the
  # import object's keys are properties, which terser leaves alone.
  run_logged terser "the wasm-bindgen glue $PKG_DIR/mlplay.js could not be minified; see the log" \
    node_modules/.bin/terser "$PKG_DIR/mlplay.js" --module --compress --mangle -o "$PKG_DIR/mlplay.js"
  grep -q "as default" "$PKG_DIR/mlplay.js" ||
    die "the minified $PKG_DIR/mlplay.js lost its default export (init)" "see $LOG_DIR/terser.log"

  say "wasm-opt -Oz $PKG_DIR/mlplay_bg.wasm"
  local before after
  before=$(wc -c <"$PKG_DIR/mlplay_bg.wasm")
  run_logged wasm-opt "wasm-opt comes from npm binaryen (node_modules); rerun after 'rm -rf node_modules'" \
    node_modules/.bin/wasm-opt -Oz "${WASM_OPT_FEATURES[@]}" \
    "$PKG_DIR/mlplay_bg.wasm" -o "$PKG_DIR/mlplay_bg.wasm"
  after=$(wc -c <"$PKG_DIR/mlplay_bg.wasm")
  note "mlplay_bg.wasm: $before -> $after bytes"
}

build_cli() {
  step "cargo build --release --features gpu --bin mlplay" "fix the compile errors above" \
    cargo build --release --features gpu --bin mlplay
}

cmd_build() {
  ensure_build_tools
  build_wasm
  build_cli
  say "built: $PKG_DIR/ (serve www/ with ./build.sh serve) and target/release/mlplay"
}

# ------------------------------------------------------------------- static server

SERVER_PID=
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_server: serve www/ on a free port in the background; sets MLPLAY_URL.
start_server() {
  local port
  port=$(free_port)
  mkdir -p "$LOG_DIR"
  python3 -m http.server --bind 127.0.0.1 --directory www "$port" \
    >"$LOG_DIR/http-server.log" 2>&1 &
  SERVER_PID=$!
  trap stop_server EXIT
  trap 'exit 130' INT TERM
  export MLPLAY_URL="http://127.0.0.1:$port/"
  local _
  for _ in $(seq 1 50); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "$MLPLAY_URL" >/dev/null 2>&1; then
      note "serving www/ at $MLPLAY_URL"
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  cat "$LOG_DIR/http-server.log" >&2
  die "the static server did not start on port $port" "see the log above; is python3 working?"
}

cmd_serve() {
  cmd_build
  local port=${PORT:-8000}
  say "serving www/ at http://127.0.0.1:$port/ (Ctrl+C to stop)"
  exec python3 -m http.server --bind 127.0.0.1 --directory www "$port"
}

# ------------------------------------------------------------------------------ test

# Totals of the test runners' own counts (cargo/wasm-bindgen-test "test result:" lines,
# node --test TAP "# pass/# fail" lines).
PASSED=0
FAILED=0
COUNTS=()

count_cargo() { # LABEL LOGFILE
  local p f
  p=$(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$2" | awk '{s += $1} END {print s + 0}')
  f=$(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$2" | awk '{s += $1} END {print s + 0}')
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  COUNTS+=("$1 $p")
}

count_tap() { # LABEL TAPFILE
  local p f
  p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$2" | tail -1)
  f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$2" | tail -1)
  PASSED=$((PASSED + ${p:-0}))
  FAILED=$((FAILED + ${f:-0}))
  COUNTS+=("$1 ${p:-0}")
}

# lint_files js|html : the hand-written files the JS lint covers (not www/pkg).
lint_files() {
  local f patterns
  if [[ $1 == js ]]; then
    patterns=(www/*.js tests/e2e/*.mjs bench/*.mjs eslint.config.mjs)
  else
    patterns=(www/*.html www/*/*.html)
  fi
  shopt -s nullglob
  for f in ${patterns[@]+"${patterns[@]}"}; do
    [[ $f == www/pkg/* ]] || printf '%s\n' "$f"
  done
  shopt -u nullglob
}

run_cargo_tests() {
  local log=$LOG_DIR/cargo-test.log
  # --features gpu: the WGSL kernels against their CPU twins on lavapipe (tests/gpu.rs).
  local rc=0
  cargo test --features gpu 2>&1 | tee "$log" || rc=1
  # The learning tests that take minutes unoptimised (they are ignored in debug builds):
  # diffusion and flow matching on two moons, the shipped default weights, and the default
  # transformer forming an induction head.
  cargo test --release --test diffusion_learn --test diffusion_weights --test transformer 2>&1 | tee -a "$log" || rc=1
  return $rc
}

run_wasm_tests() {
  local log=$LOG_DIR/wasm-test.log
  [[ -f tests/wasm.rs ]] || die "tests/wasm.rs is missing" "add the wasm-bindgen-test file tests/wasm.rs"
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$WB_BIN/wasm-bindgen-test-runner \
    CHROMEDRIVER=$CHROMEDRIVER_BIN \
    WASM_BINDGEN_TEST_TIMEOUT=120 \
    WASM_BINDGEN_TEST_WEBDRIVER_JSON=$ROOT/webdriver.json \
    cargo test --target "$WASM_TARGET" --features web --test wasm 2>&1 | tee "$log"
}

run_lint() {
  local js=() html=()
  mapfile -t js < <(lint_files js)
  mapfile -t html < <(lint_files html)
  [[ ${#js[@]} -gt 0 ]] || die "no JavaScript files to lint" "is www/mlplay.js there?"
  note "eslint on ${#js[@]} JS files; prettier --check on those and ${#html[@]} HTML pages"
  node_modules/.bin/eslint --max-warnings 0 "${js[@]}" &&
    node_modules/.bin/prettier --check --log-level warn "${js[@]}" ${html[@]+"${html[@]}"}
}

# run_e2e MODE(1|0) : node --test over tests/e2e/*.test.mjs; returns its exit code.
run_e2e() {
  local webgpu=$1 label tap files=()
  label=$([[ $webgpu == 1 ]] && echo webgpu || echo cpu)
  tap=$LOG_DIR/e2e-$label.tap
  shopt -s nullglob
  files=(tests/e2e/*.test.mjs)
  shopt -u nullglob
  [[ ${#files[@]} -gt 0 ]] || die "no end-to-end tests (tests/e2e/*.test.mjs)" "add them"
  say "browser end-to-end tests, MLPLAY_WEBGPU=$webgpu ($label path, ${#files[@]} files)"
  local rc=0
  MLPLAY_WEBGPU=$webgpu node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    "${files[@]}" || rc=$?
  count_tap "e2e-$label" "$tap"
  if [[ $rc -ne 0 ]]; then
    printf 'build.sh: e2e (%s) failed (exit %d); screenshots in target/e2e-shots/, TAP in %s\n' \
      "$label" "$rc" "$tap" >&2
  fi
  return "$rc"
}

cmd_test() {
  ensure_test_tools
  browser_env
  mkdir -p "$LOG_DIR" target/e2e-shots

  step "cargo fmt --check" "run: cargo fmt" cargo fmt --check
  step "cargo clippy --all-targets -- -D warnings" "fix the clippy warnings above" \
    cargo clippy --all-targets -- -D warnings
  step "cargo clippy --all-targets --features gpu -- -D warnings" \
    "fix the clippy warnings above (the wgpu kernels in crate/src/gpu)" \
    cargo clippy --all-targets --features gpu -- -D warnings
  step "cargo clippy --lib --target $WASM_TARGET --features web -- -D warnings" \
    "fix the clippy warnings above (wasm + web feature)" \
    cargo clippy --lib --target "$WASM_TARGET" --features web -- -D warnings
  step "cargo clippy --lib --target $WASM_TARGET --features browser-bench -- -D warnings" \
    "fix the clippy warnings above (the in-browser benchmarks, crate/src/web/bench.rs)" \
    cargo clippy --lib --target "$WASM_TARGET" --features browser-bench -- -D warnings
  step "cargo test --features gpu (native: unit + tests/*.rs, GPU kernels on lavapipe)" \
    "see the failing tests above; rerun: cargo test --features gpu" \
    run_cargo_tests
  count_cargo cargo "$LOG_DIR/cargo-test.log"
  build_wasm
  build_cli
  step "wasm tests in headless Chromium (cargo test --target $WASM_TARGET --test wasm)" \
    "see above; rerun: ./build.sh test, or set NO_HEADLESS=1 to watch in a browser" \
    run_wasm_tests
  count_cargo wasm "$LOG_DIR/wasm-test.log"
  step "JS lint (eslint, prettier --check)" \
    "fix the lint errors above; formatting: node_modules/.bin/prettier --write <files>" \
    run_lint

  start_server
  local e2e_fail=0
  run_e2e 1 || e2e_fail=1
  run_e2e 0 || e2e_fail=1
  stop_server

  say "test counts: ${COUNTS[*]}"
  if [[ $e2e_fail -ne 0 || $FAILED -ne 0 ]]; then
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    die "browser end-to-end tests failed" "see the failures above; screenshots are in target/e2e-shots/"
  fi
  say "all checks passed: fmt, clippy (native, wasm), cargo test, build, wasm tests, lint, e2e (WebGPU on and off)"
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
}

# ----------------------------------------------------------------------------- bench

cmd_bench() {
  ensure_build_tools
  ensure_browser
  browser_env
  build_wasm
  build_cli
  # The kernels' in-browser benchmarks call entry points the site's module leaves out.
  build_wasm browser-bench www/pkg-bench
  build_wasm
  start_server
  say "benchmarks (node bench/run.mjs; results also in bench-out/results.json)"
  local rc=0
  node bench/run.mjs || rc=$?
  node bench/cartpole.mjs || rc=$? # <ml-cartpole-ppo>: steps and wall time to solve, vs PyTorch
  node bench/attention.mjs || rc=$? # WGSL attention kernels: GFLOP/s natively and in Chromium
  node bench/diffusion.mjs || rc=$? # diffusion kernels: train steps/s, particle-steps/s, GPU vs CPU vs PyTorch
  node bench/diffusion_page.mjs || rc=$? # <ml-diffusion>/<ml-flow-matching>: in-page training to the threshold, playback
  node bench/transformer.mjs || rc=$? # transformer training tokens/s: WGSL vs CPU Trainer vs PyTorch
  node bench/transformer_page.mjs || rc=$? # <ml-transformer>: in-page training tokens/s (CPU path) vs the CLI
  stop_server
  [[ $rc -eq 0 ]] || die "benchmarks failed (exit $rc)" "see the messages above"
}

# ------------------------------------------------------------------------------ main

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

main() {
  case ${1:-build} in
    build) cmd_build ;;
    serve) cmd_serve ;;
    test) cmd_test ;;
    bench) cmd_bench ;;
    weights) tests/golden/diffusion_weights.sh ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      die "unknown command '$1'" "use one of: build, serve, test, bench, weights"
      ;;
  esac
}

# Sourcing the file (for debugging one step) defines the functions without running.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
