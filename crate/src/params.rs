//! Parameter tables: one `ParamSpec` row per control, one table per widget.
//!
//! Everything that sets a parameter goes through this table: element attributes and URL
//! parameters (lenient: a bad value is clamped or defaulted and a [`Notice`] says which and
//! why), sliders (always in range), and the CLI's `--key value` flags (strict: a bad value is
//! an error naming the key and its allowed range). [`Params::to_query`] is the one serialiser
//! for share links, and [`Params::from_query`] reads it back exactly.

use crate::json::Json;

/// One parameter: its key (attribute, URL key and CLI flag), how a person sees it, and its range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    /// Attribute, URL and CLI key, e.g. `eps`.
    pub key: &'static str,
    /// Label beside the slider.
    pub label: &'static str,
    /// The symbol it has in the widget's equation (plain Unicode), e.g. `ε`.
    pub symbol: &'static str,
    /// One sentence for tooltips, `mlplay list` and the docs.
    pub doc: &'static str,
    pub default: f64,
    pub min: f64,
    pub max: f64,
    /// Slider step; a whole-number step with a whole-number minimum makes an integer parameter.
    pub step: f64,
    /// Named options (a toggle or a menu): the value is the index of one of them, written by
    /// name in URLs, attributes and the CLI. Empty for a number.
    pub choices: &'static [&'static str],
    /// A slider that moves in equal ratios (a log scale) rather than equal steps, for numbers
    /// that span decades (a RoPE base from 10 to 10^7). Only the slider is logarithmic: the
    /// value, its range check and what URLs, attributes and the CLI write stay exact.
    pub log: bool,
}

impl ParamSpec {
    /// A number on a slider from `min` to `max`.
    #[allow(clippy::too_many_arguments)]
    pub const fn number(
        key: &'static str,
        label: &'static str,
        symbol: &'static str,
        doc: &'static str,
        default: f64,
        min: f64,
        max: f64,
        step: f64,
    ) -> Self {
        ParamSpec {
            key,
            label,
            symbol,
            doc,
            default,
            min,
            max,
            step,
            choices: &[],
            log: false,
        }
    }

    /// The same number on a logarithmic slider (see [`ParamSpec::log`]); `min` must be > 0.
    pub const fn log_scale(self) -> Self {
        assert!(self.min > 0.0, "a log-scale slider needs min > 0");
        ParamSpec { log: true, ..self }
    }

    /// One of several named options, `choices[default]` by default.
    pub const fn choice(
        key: &'static str,
        label: &'static str,
        symbol: &'static str,
        doc: &'static str,
        default: usize,
        choices: &'static [&'static str],
    ) -> Self {
        ParamSpec {
            key,
            label,
            symbol,
            doc,
            default: default as f64,
            min: 0.0,
            max: (choices.len() - 1) as f64,
            step: 1.0,
            choices,
            log: false,
        }
    }

    pub fn is_choice(&self) -> bool {
        !self.choices.is_empty()
    }

    pub fn is_integer(&self) -> bool {
        self.step.fract() == 0.0 && self.min.fract() == 0.0
    }

    /// Decimal places that show one step of this parameter.
    pub fn decimals(&self) -> usize {
        let mut d = 0;
        let mut s = self.step;
        while d < 6 && (s - s.round()).abs() > 1e-9 {
            s *= 10.0;
            d += 1;
        }
        d
    }

    /// The value as a person reads it next to the slider (a choice's name).
    pub fn format(&self, v: f64) -> String {
        match self.choices.get(v as usize) {
            Some(name) if self.is_choice() => name.to_string(),
            _ => format!("{:.*}", self.decimals(), v),
        }
    }

    /// The value as written in URLs and attributes: exact digits, or a choice's name.
    pub fn write(&self, v: f64) -> String {
        if self.is_choice() {
            self.format(v)
        } else {
            format!("{v}")
        }
    }

    /// Whole numbers in steps larger than one (an even head dimension: 2, 4, 6, ...).
    fn is_stepped(&self) -> bool {
        !self.is_choice() && self.is_integer() && self.step > 1.0
    }

    fn range_text(&self) -> String {
        if self.is_choice() {
            format!("one of {}", self.choices.join(", "))
        } else if self.is_stepped() {
            format!(
                "{} to {} in steps of {}",
                self.format(self.min),
                self.format(self.max),
                self.format(self.step)
            )
        } else {
            format!("{} to {}", self.format(self.min), self.format(self.max))
        }
    }

    pub fn to_json(&self) -> Json {
        self.to_json_with(self.default)
    }

    /// The table entry as JSON with `default` as its default (see [`WidgetSpec::default_of`]).
    pub fn to_json_with(&self, default: f64) -> Json {
        Json::obj([
            ("key", Json::str(self.key)),
            ("label", Json::str(self.label)),
            ("symbol", Json::str(self.symbol)),
            ("doc", Json::str(self.doc)),
            ("default", Json::Num(default)),
            ("min", Json::Num(self.min)),
            ("max", Json::Num(self.max)),
            ("step", Json::Num(self.step)),
            (
                "choices",
                Json::Arr(self.choices.iter().map(|c| Json::str(*c)).collect()),
            ),
            ("log", Json::Bool(self.log)),
        ])
    }
}

/// A widget: its element name (`ml-` + `name`), its words, and its parameter table.
#[derive(Debug, PartialEq)]
pub struct WidgetSpec {
    /// `ppo-clip` for `<ml-ppo-clip>`, `embed.html?w=ppo-clip` and `mlplay ppo-clip`.
    pub name: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamSpec],
    /// Trainers get play / pause / step / reset and a speed control.
    pub trainer: bool,
}

impl WidgetSpec {
    pub fn param(&self, key: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.key == key)
    }

    /// A parameter's default: the one the widget's core supplies at run time
    /// ([`crate::widgets::core_default`]: `<ml-transformer>` reads its model's from
    /// `TrainConfig::default()`, so the core stays the one copy), else the table's.
    pub fn default_of(&self, p: &ParamSpec) -> f64 {
        crate::widgets::core_default(self.name, p.key).unwrap_or(p.default)
    }

    pub fn to_json(&self) -> Json {
        Json::obj([
            ("name", Json::str(self.name)),
            ("element", Json::str(format!("ml-{}", self.name))),
            ("title", Json::str(self.title)),
            ("summary", Json::str(self.summary)),
            ("trainer", Json::Bool(self.trainer)),
            (
                "params",
                Json::Arr(
                    self.params
                        .iter()
                        .map(|p| p.to_json_with(self.default_of(p)))
                        .collect(),
                ),
            ),
        ])
    }
}

/// Something a person should be told about a value they gave: what was wrong and what is used instead.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub key: String,
    pub message: String,
}

/// The parameter values of one widget instance, always valid against its table.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub spec: &'static WidgetSpec,
    values: Vec<f64>,
}

/// Why a raw value cannot be used as it is.
enum Bad {
    NotANumber,
    Fraction(f64),
    /// A whole number between the steps of a stepped parameter: the nearest step instead.
    OffGrid(f64, f64),
    Below(f64),
    Above(f64),
}

fn check(p: &ParamSpec, raw: &str) -> Result<f64, Bad> {
    let raw = raw.trim();
    if let Some(i) = p.choices.iter().position(|c| c.eq_ignore_ascii_case(raw)) {
        return Ok(i as f64);
    }
    let v = crate::math::parse_f64(raw).ok_or(Bad::NotANumber)?;
    if !v.is_finite() {
        return Err(Bad::NotANumber);
    }
    if v < p.min {
        return Err(Bad::Below(v));
    }
    if v > p.max {
        return Err(Bad::Above(v));
    }
    if p.is_integer() && v.fract() != 0.0 {
        return Err(Bad::Fraction(v));
    }
    if p.is_stepped() && ((v - p.min) / p.step).fract() != 0.0 {
        let below = p.min + ((v - p.min) / p.step).floor() * p.step;
        let nearest = if v - below < below + p.step - v || below + p.step > p.max {
            below
        } else {
            below + p.step
        };
        return Err(Bad::OffGrid(v, nearest));
    }
    Ok(v)
}

impl Params {
    pub fn defaults(spec: &'static WidgetSpec) -> Self {
        Params {
            spec,
            values: spec.params.iter().map(|p| spec.default_of(p)).collect(),
        }
    }

    fn index(&self, key: &str) -> Option<usize> {
        self.spec.params.iter().position(|p| p.key == key)
    }

    /// The value of `key`. Panics on a key not in the table: that is a programming error,
    /// since the core only asks for keys of its own table.
    pub fn get(&self, key: &str) -> f64 {
        match self.index(key) {
            Some(i) => self.values[i],
            None => panic!("widget {} has no parameter {key}", self.spec.name),
        }
    }

    /// The name of a choice parameter's current option.
    pub fn choice(&self, key: &str) -> &'static str {
        let p = self.spec.param(key).expect("a key of this widget");
        p.choices[self.get(key) as usize]
    }

    /// Lenient set, for attributes, URL parameters and the JS API: a value that cannot be
    /// used is replaced (clamped, rounded or defaulted) and the returned notice says so.
    /// The value in force afterwards is always valid.
    pub fn set(&mut self, key: &str, raw: &str) -> Option<Notice> {
        let Some(i) = self.index(key) else {
            return Some(Notice {
                key: key.to_string(),
                message: format!(
                    "unknown parameter \"{key}\" ignored (this widget has: {})",
                    self.keys().join(", ")
                ),
            });
        };
        let p = &self.spec.params[i];
        let default = self.spec.default_of(p);
        let (value, message) = match check(p, raw) {
            Ok(v) => (v, None),
            Err(Bad::NotANumber) => (
                default,
                Some(format!(
                    "\"{}\" is not {}; using the default {}",
                    raw.trim(),
                    if p.is_choice() {
                        format!("one of {}", p.choices.join(", "))
                    } else {
                        "a number".to_string()
                    },
                    p.format(default)
                )),
            ),
            Err(Bad::Below(v)) => (
                p.min,
                Some(format!(
                    "{v} is below the minimum; clamped to {} (range {})",
                    p.format(p.min),
                    p.range_text()
                )),
            ),
            Err(Bad::Above(v)) => (
                p.max,
                Some(format!(
                    "{v} is above the maximum; clamped to {} (range {})",
                    p.format(p.max),
                    p.range_text()
                )),
            ),
            Err(Bad::OffGrid(v, nearest)) => (
                nearest,
                Some(format!(
                    "{v} is not one of the steps ({}); using {}",
                    p.range_text(),
                    p.format(nearest)
                )),
            ),
            Err(Bad::Fraction(v)) => (
                v.round(),
                Some(format!(
                    "{v} is not a whole number; rounded to {}",
                    v.round()
                )),
            ),
        };
        self.values[i] = value;
        message.map(|m| Notice {
            key: key.to_string(),
            message: format!("{} ({key}): {m}", p.label),
        })
    }

    /// Strict set, for the CLI: a value that is not valid is an error naming the key and its range.
    pub fn set_strict(&mut self, key: &str, raw: &str) -> Result<(), String> {
        let Some(i) = self.index(key) else {
            return Err(format!(
                "unknown parameter --{key} for {} (allowed: {})",
                self.spec.name,
                self.keys()
                    .iter()
                    .map(|k| format!("--{k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let p = &self.spec.params[i];
        let allowed = if p.is_choice() {
            format!("--{key} must be {}", p.range_text())
        } else {
            format!(
                "--{key} must be {}from {}",
                if p.is_integer() {
                    "a whole number "
                } else {
                    "a number "
                },
                p.range_text()
            )
        };
        match check(p, raw) {
            Ok(v) => {
                self.values[i] = v;
                Ok(())
            }
            Err(_) => Err(format!("invalid value \"{raw}\" for --{key}: {allowed}")),
        }
    }

    /// Set from a URL query string (`eps=0.1&adv=-1`), leniently. Keys the widget does not
    /// have are reported, except those named in `ignore` (the page's own keys, like `w`).
    pub fn from_query(
        spec: &'static WidgetSpec,
        query: &str,
        ignore: &[&str],
    ) -> (Self, Vec<Notice>) {
        let mut params = Params::defaults(spec);
        let notices = params.apply_query(query, ignore);
        (params, notices)
    }

    /// Set every `key=value` pair of a query string leniently, in order; the notices say what
    /// was replaced. Keys in `ignore` belong to the page, not the widget, and are skipped.
    pub fn apply_query(&mut self, query: &str, ignore: &[&str]) -> Vec<Notice> {
        let mut notices = Vec::new();
        for (k, v) in query_pairs(query) {
            if !ignore.contains(&k.as_str()) {
                notices.extend(self.set(&k, &v));
            }
        }
        notices
    }

    /// Every parameter as `key=value&...`, in table order, exact (shortest round-trip digits).
    pub fn to_query(&self) -> String {
        self.spec
            .params
            .iter()
            .zip(&self.values)
            .map(|(p, &v)| format!("{}={}", p.key, p.write(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    pub fn keys(&self) -> Vec<&'static str> {
        self.spec.params.iter().map(|p| p.key).collect()
    }

    pub fn to_json(&self) -> Json {
        Json::Obj(
            self.spec
                .params
                .iter()
                .zip(&self.values)
                .map(|(p, &v)| {
                    let value = if p.is_choice() {
                        Json::str(p.format(v))
                    } else {
                        Json::Num(v)
                    };
                    (p.key.to_string(), value)
                })
                .collect(),
        )
    }
}

/// The decoded `(key, value)` pairs of a query string (`?a=1&b=x%20y`), in order; pairs
/// with an empty key are skipped.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// `%XX` and `+` decoding for query strings; malformed escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
