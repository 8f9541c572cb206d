//! Lesson parameters as data.
//!
//! Each lesson has one parameter struct with defaults. It describes its fields once (`specs`), and
//! everything else is generic: parsing the URL hash or CLI arguments, range checks, cross-field
//! checks, serialising back to a query string. A lesson can only run with a [`Checked`] value, and
//! the only way to get one is [`check`] (unchecked → checked, as linfa's parameter guards do).

use std::fmt;

/// What kind of value a parameter takes, and its allowed range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Integer in min..=max; `log` makes the slider logarithmic.
    Int { min: i64, max: i64, log: bool },
    /// Real in min..=max.
    Float { min: f64, max: f64, log: bool },
    /// One of the listed (value, label) pairs.
    Choice(&'static [(&'static str, &'static str)]),
    /// A 64-bit seed.
    Seed,
    /// Any non-empty subset of the listed (value, label) pairs, written `a,b,c`.
    Set(&'static [(&'static str, &'static str)]),
}

/// One parameter: its URL/CLI name, the label next to its control, a one-line help text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spec {
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Choice(&'static str),
    Seed(u64),
    Set(Vec<&'static str>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{}", format_float(*v)),
            Value::Choice(v) => write!(f, "{v}"),
            Value::Seed(v) => write!(f, "{v}"),
            Value::Set(v) => write!(f, "{}", v.join(",")),
        }
    }
}

/// The shortest text that reads back as exactly `v`: plain digits for everyday magnitudes, the
/// exponent form for tiny or huge ones (1e-320 would otherwise print as 324 characters).
pub fn format_float(v: f64) -> String {
    if v == 0.0 || (1e-4..1e16).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// A problem with one parameter, addressed to the control of that name.
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    pub param: &'static str,
    pub message: String,
}

/// A lesson's parameter struct.
pub trait LessonParams: Default + Clone + PartialEq + fmt::Debug + 'static {
    fn specs() -> &'static [Spec];
    fn get(&self, name: &str) -> Value;
    /// Store a value that already passed the range check of its spec.
    fn set(&mut self, name: &str, value: Value);
    /// Checks between fields (K ≤ P, memory budgets...). Empty when all is well.
    fn cross_check(&self) -> Vec<Issue>;
    /// Whether a control matters for the current values (e.g. the temperature only for softmax).
    fn is_active(&self, _name: &str) -> bool {
        true
    }
    /// Named settings worth one click (a paper's column, a notebook's training): each is a
    /// query over the defaults, so a preset is parameters as data like any URL.
    fn presets() -> &'static [Preset] {
        &[]
    }
}

/// A named setting of a lesson's parameters: the values that differ from the defaults, as a query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preset {
    /// CLI name (`--preset NAME`).
    pub name: &'static str,
    /// Button label.
    pub label: &'static str,
    /// Where it comes from and what it sets, in one sentence.
    pub about: &'static str,
    /// The values it sets, over the defaults (`a=1&b=2`).
    pub query: &'static str,
}

/// A preset's parameters (defaults, then its values), checked.
pub fn preset_params<P: LessonParams>(preset: &Preset) -> Result<Checked<P>, Vec<Issue>> {
    parse_strict::<P>(preset.query)
}

/// The preset the parameters are exactly equal to, if any.
pub fn matching_preset<P: LessonParams>(params: &P) -> Option<&'static Preset> {
    P::presets().iter().find(|preset| preset_params::<P>(preset).is_ok_and(|checked| *checked == *params))
}

/// Parameters that passed every check. Only [`check`] makes one.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked<P>(P);

impl<P> std::ops::Deref for Checked<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.0
    }
}

pub fn spec_of<P: LessonParams>(name: &str) -> Option<&'static Spec> {
    P::specs().iter().find(|s| s.name == name)
}

/// Parse one value against its spec; the error says what was wrong in words a learner reads.
pub fn parse_value(spec: &Spec, text: &str) -> Result<Value, String> {
    let text = text.trim();
    match spec.kind {
        Kind::Int { min, max, .. } => {
            let x = parse_number(text).ok_or_else(|| format!("“{text}” is not a number; give a whole number in {min}…{max}"))?;
            if x.fract() != 0.0 {
                return Err(format!("{text} is not a whole number; give a whole number in {min}…{max}"));
            }
            // Compared as reals first: a huge whole number is out of range, not "not whole".
            if x < min as f64 || x > max as f64 {
                return Err(format!("{text} is outside {min}…{max}"));
            }
            let v = x as i64;
            if v < min || v > max {
                return Err(format!("{text} is outside {min}…{max}"));
            }
            Ok(Value::Int(v))
        }
        Kind::Float { min, max, .. } => {
            let v = parse_number(text).ok_or_else(|| format!("“{text}” is not a number; give a number in {min}…{max}"))?;
            if !(min..=max).contains(&v) {
                return Err(format!("{text} is outside {min}…{max}"));
            }
            Ok(Value::Float(v))
        }
        Kind::Choice(options) => options.iter().find(|(value, _)| *value == text).map(|(value, _)| Value::Choice(value)).ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(v, _)| *v).collect();
            format!("“{text}” is not one of {}", names.join(", "))
        }),
        Kind::Set(options) => {
            let mut chosen = Vec::new();
            for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match options.iter().find(|(value, _)| *value == part) {
                    Some((value, _)) if !chosen.contains(value) => chosen.push(*value),
                    Some(_) => {}
                    None => {
                        let names: Vec<&str> = options.iter().map(|(v, _)| *v).collect();
                        return Err(format!("“{part}” is not one of {}", names.join(", ")));
                    }
                }
            }
            if chosen.is_empty() {
                return Err("choose at least one".into());
            }
            // Canonical order: the order of the options.
            chosen.sort_by_key(|c| options.iter().position(|(v, _)| v == c));
            Ok(Value::Set(chosen))
        }
        Kind::Seed => {
            text.parse::<u64>().map(Value::Seed).map_err(|_| format!("“{text}” is not a seed (a whole number 0…18446744073709551615)"))
        }
    }
}

/// Accepts 1000, 1e3, 1_000 and 1,000.
fn parse_number(text: &str) -> Option<f64> {
    let cleaned: String = text.chars().filter(|c| *c != '_' && *c != ',').collect();
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Set one parameter from text, with its range check. Cross-field checks are [`check`]'s job.
pub fn set_from_text<P: LessonParams>(params: &mut P, name: &str, text: &str) -> Result<(), Issue> {
    let spec = spec_of::<P>(name).ok_or_else(|| Issue { param: "", message: format!("there is no parameter “{name}”") })?;
    let value = parse_value(spec, text).map_err(|message| Issue { param: spec.name, message })?;
    params.set(spec.name, value);
    Ok(())
}

/// unchecked → checked.
pub fn check<P: LessonParams>(params: P) -> Result<Checked<P>, Vec<Issue>> {
    let mut issues = Vec::new();
    for spec in P::specs() {
        let text = params.get(spec.name).to_string();
        if let Err(message) = parse_value(spec, &text) {
            issues.push(Issue { param: spec.name, message });
        }
    }
    issues.extend(params.cross_check());
    if issues.is_empty() {
        Ok(Checked(params))
    } else {
        Err(issues)
    }
}

/// The `name=value` pairs of a query string, percent-decoded, in order.
fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name), percent_decode(raw))
    })
}

/// "unknown parameter", with the closest real name when there is one (a typo, a missing `_`).
fn unknown_parameter<P: LessonParams>(name: &str) -> String {
    let closest = P::specs()
        .iter()
        .map(|s| (edit_distance(&name.to_lowercase(), s.name), s.name))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min_by_key(|(d, _)| *d);
    match closest {
        Some((_, suggestion)) => format!("unknown parameter “{name}”: did you mean “{suggestion}”?"),
        None => format!("unknown parameter “{name}”"),
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Parse a query strictly, as the CLI does: every problem is reported (unknown or repeated names,
/// bad values, values that conflict) and nothing falls back to a default.
pub fn parse_strict<P: LessonParams>(query: &str) -> Result<Checked<P>, Vec<Issue>> {
    let mut params = P::default();
    let mut issues = Vec::new();
    let mut given: Vec<(&'static str, String)> = Vec::new();
    for (name, text) in pairs(query) {
        let Some(spec) = spec_of::<P>(&name) else {
            issues.push(Issue { param: "", message: unknown_parameter::<P>(&name) });
            continue;
        };
        if let Some((_, first)) = given.iter().find(|(n, _)| *n == spec.name) {
            issues.push(Issue { param: spec.name, message: format!("given twice ({first} and {text}); give it once") });
            continue;
        }
        given.push((spec.name, text.clone()));
        match parse_value(spec, &text) {
            Ok(v) => params.set(spec.name, v),
            Err(message) => issues.push(Issue { param: spec.name, message }),
        }
    }
    if issues.is_empty() {
        check(params)
    } else {
        Err(issues)
    }
}

/// Parse a query string (`a=1&b=x`, the part of the URL hash after `?`). Bad or unknown values are
/// reported and replaced by their defaults; the result always passes [`check`].
pub fn from_query<P: LessonParams>(query: &str) -> (Checked<P>, Vec<Issue>) {
    let mut params = P::default();
    let mut issues = Vec::new();
    let mut given: Vec<(&'static str, String)> = Vec::new();
    for (name, text) in pairs(query) {
        match spec_of::<P>(&name) {
            None => issues.push(Issue { param: "", message: format!("{} ignored", unknown_parameter::<P>(&name)) }),
            Some(spec) => {
                // A hand-edited address may repeat a name: the last one wins, and the page says so.
                if let Some((_, first)) = given.iter().find(|(n, _)| *n == spec.name) {
                    issues.push(Issue { param: spec.name, message: format!("given twice ({first}, then {text}); using the last, {text}") });
                }
                given.push((spec.name, text.clone()));
                match parse_value(spec, &text) {
                    Ok(v) => params.set(spec.name, v),
                    Err(message) => issues
                        .push(Issue { param: spec.name, message: format!("{message}; using the default {}", P::default().get(spec.name)) }),
                }
            }
        }
    }
    // Fields that conflict with each other fall back to their defaults, one at a time, until the
    // whole passes. The field an issue names goes first; when its default does not help (K > P with
    // K already at its default, say), the other changed fields are tried: numbers before choices
    // (P = 3 is the value at fault in "K = 8 > P = 3", not the world that makes K ≤ P matter), in
    // spec order. Bounded: each round resets one more field to its default.
    let defaults = P::default();
    for _ in 0..=P::specs().len() {
        let conflicts = params.cross_check();
        let Some(first) = conflicts.first() else {
            break;
        };
        let is_number = |s: &&Spec| matches!(s.kind, Kind::Int { .. } | Kind::Float { .. });
        let others = P::specs().iter().filter(|s| s.name != first.param);
        let candidates = std::iter::once(first.param)
            .chain(others.clone().filter(is_number).map(|s| s.name))
            .chain(others.filter(|s| !is_number(s)).map(|s| s.name));
        let fix = candidates.filter(|name| params.get(name) != defaults.get(name)).find_map(|name| {
            let mut trial = params.clone();
            trial.set(name, defaults.get(name));
            let after = trial.cross_check();
            // Progress: fewer conflicts, or none left on the field the first one named.
            (after.len() < conflicts.len() || !after.iter().any(|i| i.param == first.param)).then_some((name, trial))
        });
        match fix {
            Some((name, trial)) => {
                issues.push(Issue {
                    param: name,
                    message: format!("{}; using the default {} for {name}", first.message, defaults.get(name)),
                });
                params = trial;
            }
            None => break,
        }
    }
    let checked = match check(params) {
        Ok(checked) => checked,
        Err(_) => {
            issues.push(Issue {
                param: "",
                message: "these values cannot be used together; all parameters are back to their defaults".into(),
            });
            check(P::default()).expect("defaults must be valid")
        }
    };
    (checked, issues)
}

/// The canonical query string of a parameter set, in spec order.
pub fn to_query<P: LessonParams>(params: &P) -> String {
    P::specs().iter().map(|s| format!("{}={}", s.name, percent_encode(&params.get(s.name).to_string()))).collect::<Vec<_>>().join("&")
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = (bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit())
                    .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
                    .flatten();
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parameter struct's field type: how it becomes a [`Value`] and back.
pub trait Field: Sized {
    fn to_value(&self) -> Value;
    fn from_value(value: Value) -> Option<Self>;
}

/// Each field type maps to one [`Value`] variant.
macro_rules! field {
    ($ty:ty, $variant:ident) => {
        impl Field for $ty {
            fn to_value(&self) -> Value {
                Value::$variant(self.clone())
            }
            fn from_value(value: Value) -> Option<Self> {
                if let Value::$variant(v) = value {
                    Some(v)
                } else {
                    None
                }
            }
        }
    };
}

field!(i64, Int);
field!(f64, Float);
field!(&'static str, Choice);
field!(u64, Seed);
field!(Vec<&'static str>, Set);

/// `get` and `set` of [`LessonParams`] for a struct whose fields are named like its specs:
/// `fields!(world, items, seed);` inside the `impl LessonParams` block.
#[macro_export]
macro_rules! fields {
    ($($field:ident),* $(,)?) => {
        fn get(&self, name: &str) -> $crate::core::params::Value {
            match name {
                $(stringify!($field) => $crate::core::params::Field::to_value(&self.$field),)*
                other => unreachable!("no parameter {other}"),
            }
        }

        fn set(&mut self, name: &str, value: $crate::core::params::Value) {
            match name {
                $(stringify!($field) => {
                    self.$field = $crate::core::params::Field::from_value(value.clone())
                        .unwrap_or_else(|| unreachable!("{} cannot hold {value:?}", stringify!($field)))
                })*
                other => unreachable!("no parameter {other}"),
            }
        }
    };
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    pub struct Demo {
        pub items: i64,
        pub slate: i64,
        pub rate: f64,
        pub mode: &'static str,
        pub seed: u64,
    }
    impl Default for Demo {
        fn default() -> Self {
            Demo { items: 10, slate: 3, rate: 0.5, mode: "a", seed: 1 }
        }
    }
    // `mode` first: a choice listed before the numbers it conflicts with.
    const SPECS: &[Spec] = &[
        Spec { name: "mode", label: "m", help: "", kind: Kind::Choice(&[("a", "A"), ("b", "B"), ("c", "C")]) },
        Spec { name: "items", label: "P", help: "", kind: Kind::Int { min: 2, max: 100, log: false } },
        Spec { name: "slate", label: "K", help: "", kind: Kind::Int { min: 1, max: 10, log: false } },
        Spec { name: "rate", label: "r", help: "", kind: Kind::Float { min: 0.0, max: 1.0, log: false } },
        Spec { name: "seed", label: "seed", help: "", kind: Kind::Seed },
    ];
    impl LessonParams for Demo {
        fn specs() -> &'static [Spec] {
            SPECS
        }
        crate::fields!(items, slate, rate, mode, seed);

        fn cross_check(&self) -> Vec<Issue> {
            // Mode "b" does not use slates.
            if self.mode != "b" && self.slate > self.items {
                vec![Issue { param: "slate", message: format!("K = {} exceeds P = {}", self.slate, self.items) }]
            } else {
                vec![]
            }
        }
    }

    #[test]
    fn round_trip() {
        let p = Demo { items: 42, rate: 0.125, mode: "b", seed: u64::MAX, ..Demo::default() };
        let q = to_query(&p);
        let (back, issues) = from_query::<Demo>(&q);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(*back, p);
    }

    #[test]
    fn bad_values_fall_back_one_by_one() {
        let (p, issues) = from_query::<Demo>("items=abc&rate=0.25&mode=zzz&seed=-3&bogus=1");
        assert_eq!(p.items, 10);
        assert_eq!(p.rate, 0.25);
        assert_eq!(p.mode, "a");
        assert_eq!(p.seed, 1);
        let named: Vec<&str> = issues.iter().map(|i| i.param).collect();
        assert_eq!(named, vec!["items", "mode", "seed", ""]);
        assert!(issues[0].message.contains("is not a number; give a whole number in 2…100"));
    }

    #[test]
    fn conflicts_reset_the_offending_field() {
        let (p, issues) = from_query::<Demo>("items=5&slate=8");
        assert_eq!(p.items, 5);
        assert_eq!(p.slate, 3);
        assert_eq!(issues.len(), 1);
        assert!(check(Demo { slate: 9, items: 4, ..Demo::default() }).is_err());
        // K at its default (3) but P = 2: resetting K cannot help, so P falls back instead.
        let (p, issues) = from_query::<Demo>("items=2&rate=0.75");
        assert_eq!((p.items, p.slate, p.rate), (10, 3, 0.75));
        assert_eq!(issues[0].param, "items");
        assert_eq!(percent_decode("%+1a+b"), "%+1a+b");
    }

    #[test]
    fn a_conflict_resets_the_number_at_fault_not_a_choice() {
        // K = 8 > P = 2 under mode c: resetting K (to 3) does not help, resetting mode would, but
        // the value at fault is P.
        let (p, issues) = from_query::<Demo>("mode=c&items=2&slate=8");
        assert_eq!((p.mode, p.items, p.slate), ("c", 10, 8));
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].param, "items");
        assert!(issues[0].message.contains("using the default 10 for items"), "{}", issues[0].message);
    }

    #[test]
    fn strict_parsing_reports_everything_and_guesses_nothing() {
        assert_eq!(*parse_strict::<Demo>("items=42&mode=b").unwrap(), Demo { items: 42, mode: "b", ..Demo::default() });
        let issues = parse_strict::<Demo>("itme=4&rate=2&slate=3&slate=4&seed=x").unwrap_err();
        let messages: Vec<String> = issues.iter().map(|i| format!("{}: {}", i.param, i.message)).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert_eq!(messages[0], ": unknown parameter “itme”: did you mean “items”?");
        assert!(messages[1].starts_with("rate: 2 is outside 0…1"), "{}", messages[1]);
        assert_eq!(messages[2], "slate: given twice (3 and 4); give it once");
        assert!(messages[3].starts_with("seed: "));
        assert!(messages.iter().all(|m| !m.contains("default")), "{messages:?}");
        // A conflict names the field the lesson's check names, with the values as given.
        let issues = parse_strict::<Demo>("items=2&slate=8").unwrap_err();
        assert_eq!(issues, vec![Issue { param: "slate", message: "K = 8 exceeds P = 2".into() }]);
        // The forgiving parser says what it did with a repeated name.
        let (p, issues) = from_query::<Demo>("items=5&items=7");
        assert_eq!(p.items, 7);
        assert_eq!(issues[0].message, "given twice (5, then 7); using the last, 7");
        let (_, issues) = from_query::<Demo>("zzzzzz=1");
        assert_eq!(issues[0].message, "unknown parameter “zzzzzz” ignored");
    }

    #[test]
    fn huge_whole_numbers_are_out_of_range_and_tiny_reals_stay_short() {
        let items = &SPECS[1];
        assert_eq!(parse_value(items, "9e15").unwrap_err(), "9e15 is outside 2…100");
        assert_eq!(parse_value(items, "1e300").unwrap_err(), "1e300 is outside 2…100");
        assert!(parse_value(items, "2.5").unwrap_err().contains("not a whole number"));
        let rate = &SPECS[3];
        let tiny = parse_value(rate, "1e-320").unwrap();
        assert_eq!(tiny.to_string(), "1e-320");
        assert_eq!(parse_value(rate, &tiny.to_string()).unwrap(), tiny);
        for v in [0.0, 0.5, 0.125, 1e-4, 3.0e-5, 123456.75, 1e20, 2.5e-300] {
            let text = Value::Float(v).to_string();
            assert!(text.len() <= 24, "{text}");
            assert_eq!(text.parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn out_of_range_and_formats() {
        let spec = &SPECS[1];
        assert!(parse_value(spec, "1e3").is_err());
        assert_eq!(parse_value(spec, "1e1").unwrap(), Value::Int(10));
        assert_eq!(parse_value(spec, " 1_0 ").unwrap(), Value::Int(10));
        assert!(parse_value(spec, "2.5").is_err());
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
    }
}
