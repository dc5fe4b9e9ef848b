//! A minimal JSON value, writer and reader, shared by the CLI and the browser's `state` getter.
//!
//! mlplay mostly writes JSON (the browser parses it with `JSON.parse`); [`Json::parse`]
//! reads back what a person loads into a widget (saved weights, say). Non-finite numbers
//! are written as `null`: JSON has no NaN, and a diverging run must still produce valid
//! output.

use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs, keeping their order.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An array of numbers.
    pub fn nums<'a>(xs: impl IntoIterator<Item = &'a f64>) -> Json {
        Json::Arr(xs.into_iter().map(|&x| Json::Num(x)).collect())
    }

    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// Look up a key of an object (tests and the CLI use this to read results back).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(x) => Some(*x),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(xs) => Some(xs),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Parses one JSON text (RFC 8259); the error says what was wrong and at which byte.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            depth: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i < p.s.len() {
            return Err(p.fail("unexpected text after the JSON value"));
        }
        Ok(v)
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(x) if x.is_finite() => {
                // Rust's `{}` for f64 is the shortest string that round-trips exactly.
                let _ = write!(out, "{x}");
            }
            Json::Num(_) => out.push_str("null"),
            Json::Str(s) => write_str(s, out),
            Json::Arr(xs) => {
                out.push('[');
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(out);
                }
                out.push(']');
            }
            Json::Obj(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// A recursive-descent reader over the bytes of a JSON text.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn fail(&self, what: &str) -> String {
        format!("invalid JSON at byte {}: {what}", self.i)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        self.depth += 1;
        if self.depth > 128 {
            return Err(self.fail("nested too deeply"));
        }
        let v = match self.s.get(self.i) {
            None => Err(self.fail("unexpected end")),
            Some(b'{') => {
                self.i += 1;
                let mut pairs = Vec::new();
                self.ws();
                if !self.eat("}") {
                    loop {
                        self.ws();
                        let Json::Str(k) = self.string()? else {
                            unreachable!()
                        };
                        self.ws();
                        if !self.eat(":") {
                            return Err(self.fail("expected ':'"));
                        }
                        pairs.push((k, self.value()?));
                        self.ws();
                        if self.eat("}") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err(self.fail("expected ',' or '}'"));
                        }
                    }
                }
                Ok(Json::Obj(pairs))
            }
            Some(b'[') => {
                self.i += 1;
                let mut xs = Vec::new();
                self.ws();
                if !self.eat("]") {
                    loop {
                        xs.push(self.value()?);
                        self.ws();
                        if self.eat("]") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err(self.fail("expected ',' or ']'"));
                        }
                    }
                }
                Ok(Json::Arr(xs))
            }
            Some(b'"') => self.string(),
            Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
            Some(b'n') if self.eat("null") => Ok(Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.fail("unexpected character")),
        };
        self.depth -= 1;
        v
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
            )
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII");
        crate::math::parse_f64(text)
            .filter(|x| x.is_finite())
            .map(Json::Num)
            .ok_or_else(|| self.fail(&format!("bad number {text:?}")))
    }

    fn string(&mut self) -> Result<Json, String> {
        if !self.eat("\"") {
            return Err(self.fail("expected a string"));
        }
        let mut out = String::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err(self.fail("unterminated string"));
            };
            self.i += 1;
            match b {
                b'"' => return Ok(Json::Str(out)),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.fail("unterminated escape"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or_else(|| self.fail("bad \\u escape"))?;
                            self.i += 4;
                            // Surrogate pairs are not needed for mlplay's files: keep the
                            // replacement character for a lone surrogate.
                            out.push(char::from_u32(hex).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.fail("bad escape")),
                    }
                }
                _ => {
                    // Copy a whole UTF-8 sequence: find where the next ASCII-significant byte is.
                    let start = self.i - 1;
                    let mut end = self.i;
                    while end < self.s.len() && self.s[end] >= 0x80 {
                        end += 1;
                    }
                    let chunk = std::str::from_utf8(&self.s[start..end])
                        .map_err(|_| self.fail("invalid UTF-8"))?;
                    out.push_str(chunk);
                    self.i = end;
                }
            }
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_values_and_escapes() {
        let v = Json::obj([
            ("a", Json::nums(&[1.0, 0.5, -2.0])),
            ("b", Json::str("say \"hi\"\n")),
            ("c", Json::Num(f64::NAN)),
            ("d", Json::Bool(true)),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{"a":[1,0.5,-2],"b":"say \"hi\"\n","c":null,"d":true}"#
        );
    }

    #[test]
    fn parses_what_it_writes_and_rejects_bad_text() {
        let v = Json::obj([
            ("a", Json::nums(&[1.0, 0.1, -2.5e-7])),
            ("b", Json::str("say \"hi\"\n ε")),
            ("c", Json::Null),
            (
                "d",
                Json::Arr(vec![
                    Json::Bool(true),
                    Json::Bool(false),
                    Json::obj::<&str>([]),
                ]),
            ),
        ]);
        assert_eq!(Json::parse(&v.to_string()).unwrap(), v);
        assert_eq!(
            Json::parse(" [1, {\"x\": \"\\u00e9\"}] ").unwrap(),
            Json::Arr(vec![Json::Num(1.0), Json::obj([("x", Json::str("é"))])])
        );
        for bad in [
            "",
            "[1,",
            "{\"a\" 1}",
            "[1 2]",
            "tru",
            "\"open",
            "1 2",
            "[NaN]",
            "{1: 2}",
        ] {
            assert!(Json::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Json::parse(&"[".repeat(500))
            .unwrap_err()
            .contains("deeply"));
    }

    #[test]
    fn numbers_round_trip_exactly() {
        for x in [0.1, 1.0 / 3.0, 1e-300, 6.02e23, -0.0] {
            let s = Json::Num(x).to_string();
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), x.to_bits(), "{s}");
        }
    }
}
