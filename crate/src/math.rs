//! Transcendental functions that give the same bits natively and in the browser.
//!
//! The platform maths libraries differ in the last bit (glibc natively; in wasm, Rust's
//! compiler-builtins, a port of the pure-Rust `libm`). Natively these call the `libm` crate;
//! in wasm the standard methods, which already run the same `libm` code, so the wasm holds
//! one copy of each function. `tests/e2e` checks CLI and browser numbers bit for bit.

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    pub fn sin(x: f64) -> f64 {
        libm::sin(x)
    }
    pub fn cos(x: f64) -> f64 {
        libm::cos(x)
    }
    pub fn sin_cos(x: f64) -> (f64, f64) {
        libm::sincos(x)
    }
    pub fn pow(x: f64, y: f64) -> f64 {
        libm::pow(x, y)
    }
    pub fn exp(x: f64) -> f64 {
        libm::exp(x)
    }
    pub fn ln(x: f64) -> f64 {
        libm::log(x)
    }
    pub fn tanh(x: f64) -> f64 {
        libm::tanh(x)
    }
    pub fn atan2(y: f64, x: f64) -> f64 {
        libm::atan2(y, x)
    }
    pub fn hypot(x: f64, y: f64) -> f64 {
        libm::hypot(x, y)
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    pub fn sin(x: f64) -> f64 {
        x.sin()
    }
    pub fn cos(x: f64) -> f64 {
        x.cos()
    }
    pub fn sin_cos(x: f64) -> (f64, f64) {
        x.sin_cos()
    }
    pub fn pow(x: f64, y: f64) -> f64 {
        x.powf(y)
    }
    pub fn exp(x: f64) -> f64 {
        x.exp()
    }
    pub fn ln(x: f64) -> f64 {
        x.ln()
    }
    pub fn tanh(x: f64) -> f64 {
        x.tanh()
    }
    pub fn atan2(y: f64, x: f64) -> f64 {
        y.atan2(x)
    }
    pub fn hypot(x: f64, y: f64) -> f64 {
        x.hypot(y)
    }
}

pub use imp::*;

/// Decimal text to the nearest `f64`, reading what `str::parse::<f64>` reads: an optional
/// sign, digits with an optional point (at least one digit), an optional exponent, or
/// `inf`, `infinity`, `nan` in any case. `None` for anything else.
///
/// Both sides round correctly to nearest-even, so they give the same bits. Natively this is
/// `str::parse`; in the browser the grammar is checked here and the conversion is the
/// engine's `parseFloat`, which keeps core's 10 KB power-of-five table and its parser
/// out of the wasm (`tests/wasm.rs` checks the browser's bits against native ones).
pub fn parse_f64(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let special = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(v) = special {
        return Some(if text.starts_with('-') { -v } else { v });
    }
    if !is_decimal(body) {
        return None;
    }
    decimal(text)
}

/// `digits [. digits] [(e|E) [+|-] digits]` with at least one mantissa digit.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return false;
    }
    if i < b.len() && (b[i] | 0x20) == b'e' {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(all(target_arch = "wasm32", feature = "web"))]
fn decimal(text: &str) -> Option<f64> {
    Some(js_sys::parse_float(text))
}

#[cfg(not(all(target_arch = "wasm32", feature = "web")))]
fn decimal(text: &str) -> Option<f64> {
    text.parse().ok()
}
