#!/usr/bin/env python3
"""Where the bytes of a wasm module go: code size per crate and per mlplay module.

    python3 bench/wasm_profile.py --final [--top N] [--compare OLD.wasm]
    python3 bench/wasm_profile.py FILE.wasm [--top N] [--compare OLD.wasm]

--final profiles what the page downloads: it takes cargo's module
(target/wasm32-unknown-unknown/wasm-release/mlplay.wasm, from ./build.sh build), runs
wasm-bindgen and `wasm-opt -Oz` as build.sh does but with -g, so the function names survive
(the code is the same as www/pkg/mlplay_bg.wasm's; the name section is not downloaded), and
keeps that module as target/size/named.wasm for a later --compare. A FILE is read as it is
(cargo's own output still holds wasm-bindgen's describe functions, which the CLI removes).

Each function body is charged to the crate of its demangled name (names demangled with
c++filt where cargo's output has mangled ones): `plotters::...` to plotters,
`<ndarray::... as core::...>::f` to ndarray, `<T as alloc::...>::f` to alloc,
`core::ptr::drop_in_place<T>` to core; mlplay's own functions by module (mlplay::web::cartpole,
mlplay::gpu, ...); `#[wasm_bindgen]` exports (handle_draw, ...) to "mlplay::web (exports)".
A generic function of another crate instantiated for an mlplay type (drop_in_place of a
view, say) is also shown in the "via" column under that module. Functions inlined into
others count where they were inlined: a widget's `View::draw` holds the plotters code its
call sites inlined.

Sections (code, data with the WGSL/MathML/strings, names...) are listed first, raw and
gzip -9. With --compare OLD (an earlier target/size/named.wasm, say), each row shows OLD,
NEW and the difference.
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARGO_WASM = "target/wasm32-unknown-unknown/wasm-release/mlplay.wasm"
WB_VERSION = "0.2.130"
# build.sh's WASM_OPT_FEATURES
WASM_OPT_FEATURES = [
    "--enable-bulk-memory", "--enable-bulk-memory-opt", "--enable-nontrapping-float-to-int",
    "--enable-sign-ext", "--enable-reference-types", "--enable-multivalue",
    "--enable-mutable-globals",
]


def final_module():
    """cargo's module through wasm-bindgen and wasm-opt -Oz -g: target/size/named.wasm."""
    src = os.path.join(ROOT, CARGO_WASM)
    if not os.path.exists(src):
        sys.exit(f"{src} is missing: run ./build.sh build first")
    tools = os.environ.get("MLPLAY_TOOLS", os.path.expanduser("~/.cache/mlplay"))
    wb = os.path.join(tools, f"wasm-bindgen-{WB_VERSION}", "bin", "wasm-bindgen")
    opt = os.path.join(ROOT, "node_modules", ".bin", "wasm-opt")
    out_dir = os.path.join(ROOT, "target", "size")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "named.wasm")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([wb, "--target", "web", "--out-dir", tmp, src], check=True)
        subprocess.run([opt, "-Oz", "-g", *WASM_OPT_FEATURES, os.path.join(tmp, "mlplay_bg.wasm"),
                        "-o", out], check=True)
    return out

SECTION = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
           6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data",
           12: "datacount"}


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def gz(b):
    return len(zlib.compress(b, 9))


def parse(path):
    data = open(path, "rb").read()
    i, secs = 8, []
    while i < len(data):
        sid = data[i]
        i += 1
        size, i = leb(data, i)
        secs.append((sid, data[i:i + size]))
        i += size
    nimports, names, funcs, sections = 0, {}, [], collections.Counter()
    gzs = collections.Counter()
    for sid, body in secs:
        label = SECTION.get(sid, str(sid))
        if sid == 0:
            l, j = leb(body, 0)
            label = "custom:" + body[j:j + l].decode("utf8", "replace")
        sections[label] += len(body)
        gzs[label] += gz(body)
        if sid == 2:
            n, j = leb(body, 0)
            for _ in range(n):
                l, j = leb(body, j)
                j += l
                l, j = leb(body, j)
                j += l
                k = body[j]
                j += 1
                if k == 0:
                    _, j = leb(body, j)
                    nimports += 1
                elif k == 1:
                    j += 1
                    f, j = leb(body, j)
                    _, j = leb(body, j)
                    if f & 1:
                        _, j = leb(body, j)
                elif k == 2:
                    f, j = leb(body, j)
                    _, j = leb(body, j)
                    if f & 1:
                        _, j = leb(body, j)
                elif k == 3:
                    j += 2
                elif k == 4:
                    j += 1
                    _, j = leb(body, j)
        if sid == 0:
            l, j = leb(body, 0)
            if body[j:j + l] == b"name":
                j += l
                while j < len(body):
                    t = body[j]
                    j += 1
                    sz, j = leb(body, j)
                    end = j + sz
                    if t == 1:
                        n, k = leb(body, j)
                        for _ in range(n):
                            idx, k = leb(body, k)
                            l, k = leb(body, k)
                            names[idx] = body[k:k + l].decode("utf8", "replace")
                            k += l
                    j = end
    for sid, body in secs:
        if sid == 10:
            n, j = leb(body, 0)
            for f in range(n):
                l, j2 = leb(body, j)
                funcs.append((l + (j2 - j), names.get(nimports + f, "?")))
                j = j2 + l
    readable = demangle([n for _, n in funcs])
    funcs = [(sz, n) for (sz, _), n in zip(funcs, readable)]
    return sections, gzs, funcs


CRATE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MODULE_RE = re.compile(r"mlplay::(?:web::|gpu::|scaling::)?[a-z_0-9]+")


def demangle(names):
    """Rust symbol names (legacy _ZN and v0 _R) made readable with c++filt, when present."""
    tool = shutil.which("c++filt") or shutil.which("llvm-cxxfilt")
    if not tool or not names:
        return names
    out = subprocess.run([tool], input="\n".join(n.replace("\n", " ") for n in names),
                         capture_output=True, text=True).stdout.split("\n")
    if len(out) < len(names):
        return names
    return [re.sub(r"::h[0-9a-f]{16}$", "", re.sub(r"\[[0-9a-f]{16}\]", "", d)) for d in out[:len(names)]]


PRIMITIVE = {"T", "str", "char", "bool", "f32", "f64", "i8", "i16", "i32", "i64", "i128",
             "isize", "u8", "u16", "u32", "u64", "u128", "usize", "F", "I", "A", "S"}
LIBM = {"hypot", "hypotf", "tanh", "tanhf", "logf", "log", "exp", "expf", "pow", "powf", "sin",
        "cos", "sinf", "cosf", "atan2", "atan2f", "exp2", "log2", "log10", "cbrt", "sqrt", "fmod",
        "fmodf", "tan", "atan", "asin", "acos", "expm1", "log1p", "sinh", "cosh"}


def path_crate(n):
    n = n.lstrip("_<&*( ")
    for prefix in ("dyn ", "mut ", "const ", "impl "):
        if n.startswith(prefix):
            n = n[len(prefix):].lstrip("_<&*( ")
    if n.startswith("mlplay::"):
        m = MODULE_RE.match(n)
        return m.group(0) if m else "mlplay"
    m = CRATE_RE.match(n)
    return m.group(0) if m else None


def crate_of(name):
    if name in ("?", ""):
        return "(unnamed)"
    if name.startswith("__wbg_") or name.startswith("__wbindgen") or name.startswith("__externref"):
        return "wasm_bindgen"
    if name in LIBM or name.startswith("__") or name in ("memcpy", "memset", "memmove", "memcmp", "bcmp"):
        return "compiler_builtins"
    if "::" not in name and "<" not in name:
        # #[wasm_bindgen] exports (handle_draw, benchAttention, ...): the web layer's entry points.
        return "mlplay::web (exports)"
    c = path_crate(name)
    if name.startswith("<") and " as " in name and (c in PRIMITIVE or c is None or len(c) == 1):
        # <T as Trait>::f: charge the trait's crate.
        c = path_crate(name.split(" as ", 1)[1]) or c
    if c in PRIMITIVE:
        c = "core"
    return c or "(other)"


def via_of(name):
    """The innermost mlplay module named in a foreign generic's type parameters."""
    if "mlplay::" not in name or crate_of(name).startswith("mlplay"):
        return None
    found = MODULE_RE.findall(name)
    return found[-1] if found else None


def summarise(funcs):
    own, via = collections.Counter(), collections.Counter()
    for sz, n in funcs:
        own[crate_of(n)] += sz
        v = via_of(n)
        if v:
            via[v] += sz
    return own, via


def kb(x):
    return f"{x / 1024:8.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?", help="a wasm module with a name section")
    ap.add_argument("--final", action="store_true",
                    help="profile the downloaded module: cargo's output through wasm-bindgen and wasm-opt -Oz -g")
    ap.add_argument("--top", type=int, default=25, help="largest functions to list")
    ap.add_argument("--compare", metavar="OLD", help="an earlier build of the same module")
    a = ap.parse_args()
    if a.final:
        if a.compare and os.path.abspath(a.compare) == os.path.join(ROOT, "target", "size", "named.wasm"):
            keep = a.compare + ".old"
            shutil.copyfile(a.compare, keep)
            a.compare = keep
        a.file = final_module()
    elif not a.file:
        ap.error("give a FILE or --final")

    sec, sgz, funcs = parse(a.file)
    own, via = summarise(funcs)
    total = sum(s for s, _ in funcs)
    old = None
    if a.compare:
        osec, osgz, ofuncs = parse(a.compare)
        oown, ovia = summarise(ofuncs)
        old = (osec, osgz, oown, ovia, sum(s for s, _ in ofuncs))

    print(f"{a.file}: {sum(sec.values()) / 1024:.1f} KB in sections, {len(funcs)} functions")
    print("\nsections (KB)        raw   gzip-9" + ("   old raw  old gzip" if old else ""))
    for k, v in sec.most_common():
        line = f"  {k:16s}{kb(v)} {kb(sgz[k])}"
        if old:
            line += f"  {kb(old[0][k])}  {kb(old[1][k])}"
        print(line)

    print("\ncode by crate / mlplay module (KB, raw)"
          + ("        old     new    diff" if old else "     own     via   share"))
    keys = set(own) | set(via) | (set(old[2]) | set(old[3]) if old else set())
    rows = sorted(keys, key=lambda k: -(own[k] + via[k]))
    for k in rows:
        if old:
            o, nw = old[2][k] + old[3][k], own[k] + via[k]
            if o or nw:
                print(f"  {k:40s}{kb(o)}{kb(nw)}{kb(nw - o)}")
        else:
            print(f"  {k:40s}{kb(own[k])}{kb(via[k])} {100 * own[k] / total:5.1f}%")
    if old:
        print(f"  {'total code':40s}{kb(old[4])}{kb(total)}{kb(total - old[4])}")
    else:
        print(f"  {'total code':40s}{kb(total)}")
    print("  (via: foreign generics instantiated for that module's types; counted in their crate's own column too)")

    if a.top:
        print(f"\nlargest {a.top} functions (bytes)")
        for sz, n in sorted(funcs, reverse=True)[:a.top]:
            print(f"  {sz:7d}  {n[:160]}")


if __name__ == "__main__":
    sys.exit(main())
