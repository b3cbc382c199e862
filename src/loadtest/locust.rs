//! Locust compatibility (pure): `locust.conf` and the subset of locustfiles that declare load
//! (one `HttpUser`/`FastHttpUser` class, `wait_time`, `host`, `@task`/`@task(n)` methods that
//! call `self.client.<verb>(path, name=, json=, data=, headers=)` with literal arguments),
//! translated into a native [`Workload`].
//!
//! Why a line-based reader and not a Python parser crate: the accepted subset is declarative
//! (no expressions beyond literals), and everything outside it must be *rejected* with the file,
//! the line and what to do. A full parser (rustpython-parser, ruff's parser) would accept all of
//! Python and leave us walking an AST only to reject most of it, for a large dependency (ruff's
//! parser is not published on crates.io; rustpython-parser is unmaintained since 2023). The
//! reader below joins physical lines into logical lines (brackets, strings, `\`), strips
//! comments, and parses literal arguments with a small recursive-descent literal parser.

use std::time::Duration;

use super::plan::{self, Model, Request, Task, WaitTime, Workload};
use crate::untrusted;

/// A locust file problem: `file:line: what` and the way out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{}:{line}: {}; the native runner supports only the locust subset in docs/loadtest.md, so rewrite this as a native plan (loadtest.yaml)",
    untrusted::printable(.file), untrusted::printable(.what)
)]
pub struct LocustError {
    pub file: String,
    pub line: usize,
    pub what: String,
}

/// Settings read from `locust.conf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocustConf {
    pub users: Option<u32>,
    pub spawn_rate: Option<f64>,
    pub run_time: Option<Duration>,
    pub iterations: Option<u64>,
    pub host: Option<String>,
    /// The `locustfile` line as written (often a path inside the original container).
    pub locustfile: Option<String>,
}

/// Options that change nothing about the load the native runner generates.
const IGNORED_CONF_KEYS: &[&str] = &[
    "headless",
    "only-summary",
    "autostart",
    "autoquit",
    "print-stats",
    "html",
    "csv",
    "csv-full-history",
    "json",
    "loglevel",
    "logfile",
    "skip-log-setup",
    "stop-timeout",
    "exit-code-on-error",
    "reset-stats",
    "web-host",
    "web-port",
    "processes",
];

/// The largest locust file read.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// The text of a locust file as Python reads it: UTF-8 (a byte-order mark removed) unless a
/// PEP 263 declaration on line 1 or 2 names Latin-1. Anything else is refused with its line.
pub fn source_text(file: &str, bytes: &[u8]) -> Result<String, LocustError> {
    let err = |line: usize, what: String| LocustError {
        file: file.into(),
        line,
        what,
    };
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(err(
            1,
            format!(
                "the file has {} bytes (at most {MAX_SOURCE_BYTES} are accepted)",
                bytes.len()
            ),
        ));
    }
    for (i, line) in bytes
        .split(|b| matches!(b, b'\n' | b'\r'))
        .filter(|l| !l.is_empty())
        .take(2)
        .enumerate()
    {
        let Some(enc) = coding_declaration(line) else {
            continue;
        };
        return match enc.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => untrusted::utf8_text(bytes)
                .map(str::to_string)
                .map_err(|e| err(e.line, e.to_string())),
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" | "cp819" => {
                Ok(bytes.iter().map(|b| char::from(*b)).collect())
            }
            other => Err(err(
                i + 1,
                format!(
                    "source encoding `{}` is not supported: save the file as UTF-8",
                    untrusted::printable(other)
                ),
            )),
        };
    }
    untrusted::utf8_text(bytes).map(str::to_string).map_err(|e| {
        err(
            e.line,
            format!(
                "not UTF-8 (byte 0x{:02X} at column {}) and no encoding declared: save the file as UTF-8",
                e.byte, e.column
            ),
        )
    })
}

/// The encoding named by a `# -*- coding: x -*-` comment line (PEP 263).
fn coding_declaration(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let t = text.trim_start_matches([' ', '\t', '\x0c', '\u{feff}']);
    let comment = t.strip_prefix('#')?;
    let at = comment.find("coding")?;
    let rest = comment[at + "coding".len()..].strip_prefix([':', '='])?;
    let name: String = rest
        .trim_start_matches([' ', '\t'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// A physical line as Python's tokenizer sees it: a form feed in the leading whitespace
/// resets the indentation.
fn without_formfeed(raw: &str) -> &str {
    let lead = raw.len() - raw.trim_start_matches([' ', '\t', '\x0c']).len();
    match raw[..lead].rfind('\x0c') {
        Some(i) => &raw[i + 1..],
        None => raw,
    }
}

/// Parses `locust.conf` (`key = value` lines, `#` comments, optional `[section]` headers).
pub fn parse_conf(file: &str, text: &str) -> Result<LocustConf, LocustError> {
    let mut conf = LocustConf::default();
    for (i, raw) in untrusted::python_lines(untrusted::strip_bom(text)).enumerate() {
        let line = i + 1;
        let err = |what: String| LocustError {
            file: file.into(),
            line,
            what,
        };
        let l = raw.split('#').next().unwrap_or("").trim();
        if l.is_empty() || (l.starts_with('[') && l.ends_with(']')) {
            continue;
        }
        let Some((k, v)) = l.split_once('=').or_else(|| l.split_once(':')) else {
            return Err(err(format!("expected `key = value`, got {l:?}")));
        };
        let key = k.trim().trim_start_matches('-').replace('_', "-");
        let v = v.trim().trim_matches('"').trim_matches('\'');
        match key.as_str() {
            "users" | "u" => {
                conf.users =
                    Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        err(format!("users must be a positive integer, got {v:?}"))
                    })?)
            }
            "spawn-rate" | "r" | "hatch-rate" => {
                conf.spawn_rate = Some(
                    v.parse()
                        .ok()
                        .filter(|n: &f64| n.is_finite() && *n > 0.0)
                        .ok_or_else(|| {
                            err(format!("spawn-rate must be a positive number, got {v:?}"))
                        })?,
                )
            }
            "run-time" | "t" => {
                conf.run_time = Some(
                    plan::parse_duration(v)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            err(format!("run-time {v:?} is not like `30s`, `2m`, `1h30m`"))
                        })?,
                )
            }
            "iterations" | "i" => {
                conf.iterations = Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    err(format!("iterations must be a positive integer, got {v:?}"))
                })?)
            }
            "host" | "h" => conf.host = Some(v.to_string()),
            "locustfile" | "f" => conf.locustfile = Some(v.to_string()),
            k if IGNORED_CONF_KEYS.contains(&k) => {}
            k => return Err(err(format!("option `{k}` is not supported"))),
        }
    }
    Ok(conf)
}

/// What a locustfile declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Locustfile {
    pub class_name: String,
    pub host: Option<String>,
    pub wait: Option<WaitTime>,
    pub tasks: Vec<Task>,
}

/// One logical line: physical lines joined while brackets are open, comments removed.
#[derive(Debug)]
struct Logical {
    line: usize,
    indent: usize,
    text: String,
}

fn logical_lines(text: &str) -> Result<Vec<Logical>, (usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0usize;
    let mut depth = 0i32;
    let mut quote: Option<(char, bool)> = None; // (quote char, triple)
    let mut continued = false;
    for (i, raw) in untrusted::python_lines(untrusted::strip_bom(text)).enumerate() {
        let raw = without_formfeed(raw);
        let line = i + 1;
        if cur.is_empty() && depth == 0 && quote.is_none() && !continued {
            start = line;
        }
        continued = false;
        let chars: Vec<char> = raw.chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            if let Some((q, triple)) = quote {
                cur.push(c);
                if c == '\\' && j + 1 < chars.len() {
                    cur.push(chars[j + 1]);
                    j += 2;
                    continue;
                }
                if c == q {
                    if !triple {
                        quote = None;
                    } else if chars.get(j + 1) == Some(&q) && chars.get(j + 2) == Some(&q) {
                        cur.push(q);
                        cur.push(q);
                        j += 2;
                        quote = None;
                    }
                }
                j += 1;
                continue;
            }
            match c {
                '#' => break,
                '\'' | '"' => {
                    let triple = chars.get(j + 1) == Some(&c) && chars.get(j + 2) == Some(&c);
                    quote = Some((c, triple));
                    cur.push(c);
                    if triple {
                        cur.push(c);
                        cur.push(c);
                        j += 2;
                    }
                }
                '(' | '[' | '{' => {
                    depth += 1;
                    cur.push(c)
                }
                ')' | ']' | '}' => {
                    depth -= 1;
                    if depth < 0 {
                        return Err((line, format!("unbalanced `{c}`")));
                    }
                    cur.push(c)
                }
                '\\' if j + 1 == chars.len() => continued = true,
                _ => cur.push(c),
            }
            j += 1;
        }
        if quote.is_some_and(|(_, triple)| !triple) {
            return Err((line, "unterminated string".into()));
        }
        if depth > 0 || continued || quote.is_some() {
            cur.push(if quote.is_some() { '\n' } else { ' ' });
            continue;
        }
        if !cur.trim().is_empty() {
            let indent = cur.len() - cur.trim_start().len();
            out.push(Logical {
                line: start,
                indent,
                text: cur.trim().to_string(),
            });
        }
        cur.clear();
    }
    if depth != 0 || quote.is_some() {
        return Err((start, "unclosed bracket or string at end of file".into()));
    }
    Ok(out)
}

const LOCUST_NAMES: &[&str] = &[
    "HttpUser",
    "FastHttpUser",
    "task",
    "between",
    "constant",
    "constant_throughput",
];

/// Parses a locustfile in the supported subset.
pub fn parse_locustfile(file: &str, text: &str) -> Result<Locustfile, LocustError> {
    let lines = logical_lines(text).map_err(|(line, what)| LocustError {
        file: file.into(),
        line,
        what,
    })?;
    let mut lf: Option<Locustfile> = None;
    let mut class_indent: Option<usize> = None;
    let mut pending_weight: Option<(usize, u32)> = None;
    // The `def` line of each task, for problems reported after reading the file.
    let mut task_lines: Vec<usize> = Vec::new();
    // The method being read: (def indent, task index or None for `pass`-only helpers).
    let mut method: Option<(usize, Option<usize>, String)> = None;
    for l in &lines {
        let err = |what: String| LocustError {
            file: file.into(),
            line: l.line,
            what,
        };
        let t = l.text.as_str();
        if let Some((def_indent, task, name)) = &method {
            if l.indent > *def_indent {
                if t == "pass" || is_docstring(t) {
                    continue;
                }
                let Some(task) = task else {
                    return Err(err(format!(
                        "method `{name}` is not a task: only `pass` is supported in `on_start`/`on_stop`"
                    )));
                };
                let req = parse_client_call(t).map_err(err)?;
                if let Some(lf) = lf.as_mut() {
                    lf.tasks[*task].requests.push(req);
                }
                continue;
            }
            method = None;
        }
        if l.indent == 0 {
            if lf.is_some() && class_indent.is_some() {
                class_indent = None;
            }
            if let Some(rest) = t.strip_prefix("from ") {
                let (module, names) = rest
                    .split_once(" import ")
                    .ok_or_else(|| err(format!("cannot read import {t:?}")))?;
                if !matches!(module.trim(), "locust" | "locust.contrib.fasthttp") {
                    return Err(err(format!(
                        "import from `{}` is not supported",
                        module.trim()
                    )));
                }
                for n in names
                    .trim_matches(|c| c == '(' || c == ')' || c == ' ')
                    .split(',')
                {
                    let n = n.trim();
                    if !n.is_empty() && !LOCUST_NAMES.contains(&n) {
                        return Err(err(format!("`{n}` from locust is not supported")));
                    }
                }
                continue;
            }
            if t.starts_with("import ") {
                return Err(err(format!(
                    "`{t}` is not supported (only `from locust import ...`)"
                )));
            }
            if let Some(rest) = t.strip_prefix("class ") {
                let (name, base) = rest
                    .trim_end_matches(':')
                    .split_once('(')
                    .map(|(n, b)| (n.trim(), b.trim_end_matches(')').trim()))
                    .ok_or_else(|| {
                        err(format!(
                            "class `{rest}` must derive from HttpUser or FastHttpUser"
                        ))
                    })?;
                if !matches!(base, "HttpUser" | "FastHttpUser") {
                    return Err(err(format!(
                        "class `{name}` derives from `{base}`: only HttpUser and FastHttpUser are supported"
                    )));
                }
                if lf.is_some() {
                    return Err(err(format!(
                        "second user class `{name}`: only one user class per locustfile is supported"
                    )));
                }
                lf = Some(Locustfile {
                    class_name: name.into(),
                    host: None,
                    wait: None,
                    tasks: Vec::new(),
                });
                class_indent = None;
                continue;
            }
            if is_docstring(t) {
                continue;
            }
            return Err(err(format!(
                "top-level statement `{}` is not supported",
                short(t)
            )));
        }
        // Inside the class body.
        let Some(cls) = lf.as_mut() else {
            return Err(err("unexpected indentation outside a class".into()));
        };
        let ci = *class_indent.get_or_insert(l.indent);
        if l.indent != ci {
            return Err(err("unexpected indentation in the class body".into()));
        }
        if t == "pass" || is_docstring(t) {
            continue;
        }
        if let Some(w) = t.strip_prefix("@task") {
            let w = w.trim();
            let weight = if w.is_empty() {
                1
            } else {
                let args = parse_call_args(w.trim_start_matches('(').trim_end_matches(')'))
                    .map_err(err)?;
                let args: Vec<(Option<&str>, &Py)> =
                    args.iter().map(|(k, v)| (k.as_deref(), v)).collect();
                match args.as_slice() {
                    // `@task()`: locust's default weight
                    [] => 1,
                    [(None | Some("weight"), Py::Int(n))]
                        if (1..=i64::from(u32::MAX)).contains(n) =>
                    {
                        *n as u32
                    }
                    _ => return Err(err(format!("`@task{w}` needs a positive integer weight"))),
                }
            };
            pending_weight = Some((l.line, weight));
            continue;
        }
        if t.starts_with('@') {
            return Err(err(format!("decorator `{}` is not supported", short(t))));
        }
        if let Some(rest) = t.strip_prefix("def ") {
            let name = rest.split('(').next().unwrap_or("").trim().to_string();
            if !rest.trim_end().ends_with(':') || !rest.contains("(self") {
                return Err(err(format!("cannot read method definition `{}`", short(t))));
            }
            match pending_weight.take() {
                Some((_, weight)) => {
                    cls.tasks.push(Task {
                        name: name.clone(),
                        weight,
                        requests: Vec::new(),
                    });
                    task_lines.push(l.line);
                    method = Some((l.indent, Some(cls.tasks.len() - 1), name));
                }
                None => method = Some((l.indent, None, name)),
            }
            continue;
        }
        if let Some((lhs, rhs)) = t.split_once('=') {
            let (lhs, rhs) = (lhs.trim(), rhs.trim());
            match lhs {
                "wait_time" => cls.wait = Some(parse_wait(rhs).map_err(err)?),
                "host" => match parse_literal(rhs) {
                    Ok(Py::Str(s)) => cls.host = Some(s),
                    _ => return Err(err("`host` must be a string literal".into())),
                },
                "weight" | "fixed_count" => {}
                other => {
                    return Err(err(format!("class attribute `{other}` is not supported")));
                }
            }
            continue;
        }
        return Err(err(format!(
            "statement `{}` is not supported in a user class",
            short(t)
        )));
    }
    if let Some((line, _)) = pending_weight {
        return Err(LocustError {
            file: file.into(),
            line,
            what: "`@task` is not followed by a method".into(),
        });
    }
    let lf = lf.ok_or_else(|| LocustError {
        file: file.into(),
        line: 1,
        what: "no user class (`class X(HttpUser):`) found".into(),
    })?;
    if lf.tasks.is_empty() {
        return Err(LocustError {
            file: file.into(),
            line: 1,
            what: format!("class `{}` has no `@task` methods", lf.class_name),
        });
    }
    if let Some((i, t)) = lf
        .tasks
        .iter()
        .enumerate()
        .find(|(_, t)| t.requests.is_empty())
    {
        return Err(LocustError {
            file: file.into(),
            line: task_lines.get(i).copied().unwrap_or(1),
            what: format!("task `{}` sends no request", t.name),
        });
    }
    Ok(lf)
}

/// Combines `locust.conf` and a locustfile into a workload (locust's defaults: 1 user,
/// spawn rate 1/s, no wait; a run with failed requests fails).
pub fn to_workload(conf: &LocustConf, lf: &Locustfile) -> Workload {
    let run_time = match (conf.run_time, conf.iterations) {
        (Some(d), _) => Some(d),
        (None, Some(_)) => None,
        (None, None) => Some(plan::DEFAULT_RUN_TIME),
    };
    Workload {
        host: conf.host.clone().or_else(|| lf.host.clone()),
        model: Model::Closed {
            users: conf.users.unwrap_or(1),
            spawn_rate: conf.spawn_rate.unwrap_or(1.0),
            wait: lf.wait,
        },
        run_time,
        iterations: conf.iterations,
        // FastHttpUser's default network timeout.
        timeout: Duration::from_secs(60),
        tasks: lf.tasks.clone(),
        thresholds: plan::default_thresholds(),
    }
}

fn short(t: &str) -> String {
    let s: String = t.chars().take(60).collect();
    if s.len() < t.len() {
        format!("{s}...")
    } else {
        s
    }
}

fn is_docstring(t: &str) -> bool {
    (t.starts_with("\"\"\"") || t.starts_with("'''")) && parse_literal(t).is_ok()
}

fn parse_wait(rhs: &str) -> Result<WaitTime, String> {
    let (f, args) = rhs.split_once('(').ok_or_else(|| {
        format!("wait_time `{rhs}` must be between(a, b), constant(x) or constant_throughput(x)")
    })?;
    let args = parse_call_args(args.strip_suffix(')').unwrap_or(args))?;
    let nums: Vec<f64> = args
        .iter()
        .map(|(k, v)| match (k, v) {
            (None, Py::Num(n)) if *n >= 0.0 => Ok(*n),
            (None, Py::Int(n)) if *n >= 0 => Ok(*n as f64),
            _ => Err(format!(
                "wait_time `{rhs}` needs non-negative number literals"
            )),
        })
        .collect::<Result<_, _>>()?;
    match (f.trim(), nums.as_slice()) {
        ("between", [a, b]) if a <= b => Ok(WaitTime::Between([*a, *b])),
        ("constant", [x]) => Ok(WaitTime::Constant(*x)),
        ("constant_throughput", [x]) if *x > 0.0 => Ok(WaitTime::ConstantThroughput(*x)),
        _ => Err(format!(
            "wait_time `{rhs}` is not supported: use between(a, b), constant(x) or constant_throughput(x)"
        )),
    }
}

/// `self.client.get("/path", name="x", headers={...}, json=..., data=...)`.
fn parse_client_call(t: &str) -> Result<Request, String> {
    let not_supported = || {
        format!(
            "statement `{}` is not supported in a task: only `self.client.<get|post|put|delete|patch|head|options>(...)` calls",
            short(t)
        )
    };
    let rest = t.strip_prefix("self.client.").ok_or_else(not_supported)?;
    let (verb, args) = rest.split_once('(').ok_or_else(not_supported)?;
    let args = args.strip_suffix(')').ok_or_else(not_supported)?;
    let method = match verb.trim() {
        "get" => http::Method::GET,
        "post" => http::Method::POST,
        "put" => http::Method::PUT,
        "delete" => http::Method::DELETE,
        "patch" => http::Method::PATCH,
        "head" => http::Method::HEAD,
        "options" => http::Method::OPTIONS,
        _ => return Err(not_supported()),
    };
    let mut path = None;
    let mut name = None;
    let mut headers = Vec::new();
    let mut body = bytes::Bytes::new();
    let mut content_type = None;
    // requests' signatures: `post(url, data=None, json=None)`, `put/patch(url, data=None)`,
    // the other verbs take only the URL positionally.
    let positional: &[&str] = match verb.trim() {
        "post" => &["url", "data", "json"],
        "put" | "patch" => &["url", "data"],
        _ => &["url"],
    };
    for (i, (k, v)) in parse_call_args(args)?.into_iter().enumerate() {
        let k = match k {
            Some(k) => Some(k),
            None => match positional.get(i) {
                Some(p) => Some((*p).to_string()),
                None => {
                    return Err(format!(
                        "`self.client.{}` takes at most {} positional argument(s) (the path{})",
                        verb.trim(),
                        positional.len(),
                        match positional.len() {
                            3 => ", data, json",
                            2 => ", data",
                            _ => "",
                        }
                    ));
                }
            },
        };
        match (k.as_deref(), v) {
            // `None` is requests' default: the argument is not given (no body, no type).
            (Some("json" | "data" | "name" | "headers"), Py::None) => {}
            (Some("url") | Some("path"), Py::Str(s)) if path.is_none() => path = Some(s),
            (Some("name"), Py::Str(s)) => name = Some(s),
            (Some("headers"), Py::Dict(kv)) => {
                for (hk, hv) in kv {
                    let (Py::Str(hk), Py::Str(hv)) = (hk, hv) else {
                        return Err("headers must map strings to strings".into());
                    };
                    let n = http::HeaderName::from_bytes(hk.as_bytes())
                        .map_err(|_| format!("invalid header name {hk:?}"))?;
                    let v = http::HeaderValue::from_str(&hv)
                        .map_err(|_| format!("invalid value for header {hk:?}"))?;
                    headers.push((n, v));
                }
            }
            (Some("json"), v) => {
                body = bytes::Bytes::from(v.to_json()?.to_string());
                content_type = Some("application/json");
            }
            (Some("data"), Py::Str(s)) => body = bytes::Bytes::from(s),
            (Some("data"), Py::Dict(kv)) => {
                let mut parts = Vec::new();
                for (dk, dv) in kv {
                    parts.push(format!(
                        "{}={}",
                        form_enc(&dk.to_plain()?),
                        form_enc(&dv.to_plain()?)
                    ));
                }
                body = bytes::Bytes::from(parts.join("&"));
                content_type = Some("application/x-www-form-urlencoded");
            }
            (Some(k), _) if ["name", "headers", "data"].contains(&k) => {
                return Err(format!(
                    "`{k}=` must be a literal of the right type (string or dict)"
                ));
            }
            (Some("url" | "path"), _) => {
                return Err("the path must be one string literal argument".into());
            }
            (Some(k), _) => return Err(format!("argument `{k}=` is not supported")),
            (None, _) => return Err("the path must be one string literal argument".into()),
        }
    }
    let path = path.ok_or("the request has no path argument")?;
    let path = plan::check_path(&requote_uri(&path))?;
    if let Some(ct) = content_type
        && !headers.iter().any(|(n, _)| n == http::header::CONTENT_TYPE)
    {
        headers.push((
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(ct),
        ));
    }
    Ok(Request {
        // Locust groups statistics by the URL unless `name=` is given.
        name: name.unwrap_or_else(|| path.clone()),
        method,
        path,
        headers,
        body,
    })
}

/// What requests does to a URL before sending it (`requote_uri`): characters outside the
/// URL's unreserved and reserved sets (non-ASCII, space, `"`, `<`, `>`, ...) are
/// percent-encoded as UTF-8; existing `%XX` escapes are kept.
fn requote_uri(s: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'%')
        .remove(b'&')
        .remove(b'\'')
        .remove(b'(')
        .remove(b')')
        .remove(b'*')
        .remove(b'+')
        .remove(b',')
        .remove(b'/')
        .remove(b':')
        .remove(b';')
        .remove(b'=')
        .remove(b'?')
        .remove(b'@')
        .remove(b'[')
        .remove(b']');
    utf8_percent_encode(s, SET).to_string()
}

fn form_enc(s: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, SET).to_string().replace("%20", "+")
}

/// A Python literal.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    Str(String),
    Num(f64),
    Int(i64),
    Bool(bool),
    None,
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

impl Py {
    fn to_json(&self) -> Result<serde_json::Value, String> {
        use serde_json::Value;
        Ok(match self {
            Py::Str(s) => Value::String(s.clone()),
            Py::Int(i) => Value::from(*i),
            Py::Num(n) => serde_json::Number::from_f64(*n)
                .map(Value::Number)
                .ok_or("non-finite number in json=")?,
            Py::Bool(b) => Value::Bool(*b),
            Py::None => Value::Null,
            Py::List(v) => Value::Array(v.iter().map(Py::to_json).collect::<Result<_, _>>()?),
            Py::Dict(kv) => {
                let mut m = serde_json::Map::new();
                for (k, v) in kv {
                    let Py::Str(k) = k else {
                        return Err("json= dict keys must be strings".into());
                    };
                    m.insert(k.clone(), v.to_json()?);
                }
                Value::Object(m)
            }
        })
    }

    fn to_plain(&self) -> Result<String, String> {
        match self {
            Py::Str(s) => Ok(s.clone()),
            Py::Int(i) => Ok(i.to_string()),
            Py::Num(n) => Ok(n.to_string()),
            _ => Err("data= dict values must be strings or numbers".into()),
        }
    }
}

/// How deep literals may nest (the parser recurses once per level).
const MAX_LITERAL_DEPTH: usize = 64;

/// A literal parser over one logical line fragment.
struct Lit<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
    /// Open brackets around the current position.
    depth: usize,
}

impl<'a> Lit<'a> {
    fn new(src: &'a str) -> Self {
        Lit {
            s: src.as_bytes(),
            src,
            pos: 0,
            depth: 0,
        }
    }
    /// Enters a bracket; refuses to go deeper than [`MAX_LITERAL_DEPTH`].
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_LITERAL_DEPTH {
            return Err(format!(
                "literal nested more than {MAX_LITERAL_DEPTH} levels deep"
            ));
        }
        Ok(())
    }
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_')
        {
            self.pos += 1;
        }
        (self.pos > start && !self.s[start].is_ascii_digit()).then(|| &self.src[start..self.pos])
    }
    fn value(&mut self) -> Result<Py, String> {
        self.ws();
        match self.peek() {
            Some(b'"' | b'\'') => self.string(false),
            Some(b'r' | b'R') if matches!(self.s.get(self.pos + 1), Some(b'"' | b'\'')) => {
                self.pos += 1;
                self.string(true)
            }
            Some(b'f' | b'F' | b'b' | b'B')
                if matches!(self.s.get(self.pos + 1), Some(b'"' | b'\'')) =>
            {
                Err("f-strings and bytes literals are not supported: use a plain string".into())
            }
            Some(b'[') | Some(b'(') => {
                let close = if self.peek() == Some(b'[') {
                    b']'
                } else {
                    b')'
                };
                self.pos += 1;
                self.enter()?;
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.value()?);
                    if !self.eat(b',') {
                        if self.eat(close) {
                            break;
                        }
                        return Err("expected `,` in list".into());
                    }
                }
                self.depth -= 1;
                Ok(Py::List(items))
            }
            Some(b'{') => {
                self.pos += 1;
                self.enter()?;
                let mut kv = Vec::new();
                loop {
                    if self.eat(b'}') {
                        break;
                    }
                    let k = self.value()?;
                    if !self.eat(b':') {
                        return Err("expected `:` in dict".into());
                    }
                    let v = self.value()?;
                    kv.push((k, v));
                    if !self.eat(b',') {
                        if self.eat(b'}') {
                            break;
                        }
                        return Err("expected `,` in dict".into());
                    }
                }
                self.depth -= 1;
                Ok(Py::Dict(kv))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'.' => {
                let start = self.pos;
                self.pos += 1;
                while self.pos < self.s.len()
                    && (self.s[self.pos].is_ascii_alphanumeric()
                        || matches!(self.s[self.pos], b'.' | b'_'))
                {
                    self.pos += 1;
                }
                let t = self.src[start..self.pos].replace('_', "");
                if let Ok(i) = t.parse::<i64>() {
                    return Ok(Py::Int(i));
                }
                t.parse::<f64>()
                    .map(Py::Num)
                    .map_err(|_| format!("cannot read number `{t}`"))
            }
            _ => match self.ident() {
                Some("True") => Ok(Py::Bool(true)),
                Some("False") => Ok(Py::Bool(false)),
                Some("None") => Ok(Py::None),
                Some(id) => Err(format!(
                    "`{id}` is not a literal: only literal arguments (strings, numbers, dicts, lists) are supported"
                )),
                None => Err("expected a literal".into()),
            },
        }
    }
    fn string(&mut self, raw: bool) -> Result<Py, String> {
        let mut out = self.one_string(raw)?;
        // Adjacent literals concatenate, as in Python; a loop, so that thousands of them
        // cannot exhaust the stack.
        loop {
            self.ws();
            if !matches!(self.peek(), Some(b'"' | b'\'')) {
                return Ok(Py::Str(out));
            }
            out.push_str(&self.one_string(false)?);
        }
    }
    fn one_string(&mut self, raw: bool) -> Result<String, String> {
        let q = self.s[self.pos];
        let triple = self.s.get(self.pos + 1) == Some(&q) && self.s.get(self.pos + 2) == Some(&q);
        self.pos += if triple { 3 } else { 1 };
        let mut out = String::new();
        let rest = &self.src[self.pos..];
        let mut it = rest.char_indices();
        while let Some((i, c)) = it.next() {
            if c == '\\' && !raw {
                match it.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, '0')) => out.push('\0'),
                    Some((_, '\n')) => {}
                    Some((_, e)) => {
                        if !matches!(e, '\\' | '\'' | '"') {
                            out.push('\\');
                        }
                        out.push(e)
                    }
                    None => return Err("unterminated string".into()),
                }
                continue;
            }
            if c as u32 == u32::from(q) {
                let qs = if triple { 3 } else { 1 };
                if rest[i..].bytes().take(qs).all(|b| b == q) && rest[i..].len() >= qs {
                    self.pos += i + qs;
                    return Ok(out);
                }
            }
            out.push(c);
        }
        Err("unterminated string".into())
    }
}

fn parse_literal(t: &str) -> Result<Py, String> {
    let mut p = Lit::new(t);
    let v = p.value()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(format!("unexpected `{}` after the literal", &t[p.pos..]));
    }
    Ok(v)
}

/// `a, b, k=v` → positional and keyword literal arguments.
fn parse_call_args(t: &str) -> Result<Vec<(Option<String>, Py)>, String> {
    let mut p = Lit::new(t);
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.pos >= p.s.len() {
            break;
        }
        let save = p.pos;
        let kw = match p.ident() {
            Some(id)
                if {
                    p.ws();
                    p.peek() == Some(b'=') && p.s.get(p.pos + 1) != Some(&b'=')
                } =>
            {
                p.pos += 1;
                Some(id.to_string())
            }
            _ => {
                p.pos = save;
                None
            }
        };
        out.push((kw, p.value()?));
        p.ws();
        if p.pos >= p.s.len() {
            break;
        }
        if !p.eat(b',') {
            return Err(format!("cannot read arguments `{}`", short(t)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TUTORIAL_CONF: &str = include_str!("../../assets/tutorial/locust.conf");
    const TUTORIAL_PY: &str = include_str!("../../assets/tutorial/basic.py");

    #[test]
    fn tutorial_files_translate_as_they_are() {
        let conf = parse_conf("locust/locust.conf", TUTORIAL_CONF).expect("conf");
        assert_eq!(conf.users, Some(10));
        assert_eq!(conf.run_time, Some(Duration::from_secs(60)));
        assert_eq!(conf.spawn_rate, None);
        assert_eq!(conf.locustfile.as_deref(), Some("/locust/locust.py"));
        let lf = parse_locustfile("locust/basic.py", TUTORIAL_PY).expect("locustfile");
        assert_eq!(lf.class_name, "WebsiteUser");
        assert_eq!(lf.wait, Some(WaitTime::Between([5.0, 15.0])));
        assert_eq!(lf.tasks.len(), 1);
        assert_eq!(lf.tasks[0].name, "index");
        assert_eq!(lf.tasks[0].requests[0].path, "/");
        assert_eq!(lf.tasks[0].requests[0].method, http::Method::GET);
        let w = to_workload(&conf, &lf);
        assert_eq!(
            w.model,
            Model::Closed {
                users: 10,
                spawn_rate: 1.0,
                wait: Some(WaitTime::Between([5.0, 15.0]))
            }
        );
        assert_eq!(w.run_time, Some(Duration::from_secs(60)));
        assert_eq!(w.thresholds, plan::default_thresholds());
    }

    #[test]
    fn the_supported_subset_translates() {
        let py = r#"
"""A module docstring."""
from locust import FastHttpUser, task, constant_throughput  # comment

class Shop(FastHttpUser):
    host = "http://shop.example-qa"
    wait_time = constant_throughput(2)
    weight = 3

    def on_start(self):
        pass

    @task(3)
    def browse(self):
        '''Docstring.'''
        self.client.get("/items?page=1", name="items")
        self.client.get('/items/#1', headers={"X-Trace": "a#b"})

    @task
    def order(self):
        self.client.post(
            "/orders",
            json={"item": 1, "qty": 2.5, "gift": True, "note": None, "tags": ["a", 'b']},
            headers={'Authorization': "Bearer t"},
        )
        self.client.put("/form", data={"a b": "c&d", "n": 1})
        self.client.delete("/orders/1", name="del")
        self.client.patch("/raw", data="x=1")
"#;
        let lf = parse_locustfile("f.py", py).expect("subset");
        assert_eq!(lf.host.as_deref(), Some("http://shop.example-qa"));
        assert_eq!(lf.wait, Some(WaitTime::ConstantThroughput(2.0)));
        assert_eq!(
            lf.tasks
                .iter()
                .map(|t| (t.name.as_str(), t.weight))
                .collect::<Vec<_>>(),
            [("browse", 3), ("order", 1)]
        );
        let b = &lf.tasks[0].requests;
        assert_eq!(
            (b[0].name.as_str(), b[0].path.as_str()),
            ("items", "/items?page=1")
        );
        assert_eq!(b[1].headers[0].1, "a#b");
        let o = &lf.tasks[1].requests;
        assert_eq!(o.len(), 4);
        assert_eq!(o[0].method, http::Method::POST);
        let j: serde_json::Value = serde_json::from_slice(&o[0].body).expect("json");
        assert_eq!(
            j,
            serde_json::json!({"item": 1, "qty": 2.5, "gift": true, "note": null, "tags": ["a", "b"]})
        );
        assert!(
            o[0].headers
                .iter()
                .any(|(n, v)| n == "content-type" && v == "application/json")
        );
        assert!(
            o[0].headers
                .iter()
                .any(|(n, v)| n == "authorization" && v == "Bearer t")
        );
        assert_eq!(&o[1].body[..], b"a+b=c%26d&n=1");
        assert_eq!(
            (o[2].method.as_str(), o[2].name.as_str()),
            ("DELETE", "del")
        );
        assert_eq!(&o[3].body[..], b"x=1");
    }

    fn reject(py: &str) -> LocustError {
        parse_locustfile("locust/x.py", py).expect_err("must be rejected")
    }

    #[test]
    fn everything_outside_the_subset_is_rejected_with_file_line_and_advice() {
        let head = "from locust import HttpUser, task\nclass U(HttpUser):\n";
        let cases: &[(&str, usize, &str)] = &[
            ("import random\n", 1, "import random"),
            ("from locust import HttpUser, events\n", 1, "`events`"),
            ("from locust import User, task\n", 1, "`User`"),
            (
                "from locust import HttpUser, task\nclass U(User):\n    pass\n",
                2,
                "only HttpUser and FastHttpUser",
            ),
            ("x = 1\n", 1, "top-level statement"),
            (
                &format!("{head}    wait_time = between(1)\n"),
                3,
                "wait_time",
            ),
            (&format!("{head}    wait_time = my_wait\n"), 3, "wait_time"),
            (
                &format!("{head}    tasks = [a]\n"),
                3,
                "class attribute `tasks`",
            ),
            (
                &format!(
                    "{head}    @tag('x')\n    @task\n    def a(self):\n        self.client.get('/')\n"
                ),
                3,
                "decorator",
            ),
            (
                &format!(
                    "{head}    @task\n    def a(self):\n        for i in range(3):\n            self.client.get('/')\n"
                ),
                5,
                "statement `for i",
            ),
            (
                &format!(
                    "{head}    @task\n    def a(self):\n        self.client.get(f'/x/{{id}}')\n"
                ),
                5,
                "f-strings",
            ),
            (
                &format!("{head}    @task\n    def a(self):\n        self.client.get(URL)\n"),
                5,
                "not a literal",
            ),
            (
                &format!(
                    "{head}    @task\n    def a(self):\n        self.client.get('/', catch_response=True)\n"
                ),
                5,
                "`catch_response=`",
            ),
            (
                &format!(
                    "{head}    @task\n    def a(self):\n        self.client.get('http://other/')\n"
                ),
                5,
                "must start with `/`",
            ),
            (
                &format!(
                    "{head}    @task\n    def a(self):\n        with self.client.get('/') as r:\n            pass\n"
                ),
                5,
                "statement `with",
            ),
            (
                &format!("{head}    def on_start(self):\n        self.client.post('/login')\n"),
                4,
                "on_start",
            ),
            (
                &format!("{head}    @task(0)\n    def a(self):\n        self.client.get('/')\n"),
                3,
                "positive integer weight",
            ),
            (
                &format!(
                    "{head}    @task\n    def a(self):\n        self.client.get('/')\nclass V(HttpUser):\n    pass\n"
                ),
                6,
                "second user class",
            ),
            (
                &format!("{head}    @task\n    def a(self):\n        self.client.get('/')\n"),
                0,
                "",
            ),
            ("from locust import HttpUser\n", 1, "no user class"),
            (&format!("{head}    pass\n"), 1, "no `@task` methods"),
            (
                &format!("{head}    @task\n    def a(self):\n        self.client.get('/x\n"),
                5,
                "unterminated string",
            ),
        ];
        for (py, line, needle) in cases {
            if needle.is_empty() {
                assert!(parse_locustfile("locust/x.py", py).is_ok(), "{py}");
                continue;
            }
            let e = reject(py);
            assert_eq!(e.line, *line, "{py}: {e}");
            assert!(e.what.contains(needle), "{py}: {e}");
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("locust/x.py:{line}: ")), "{msg}");
            assert!(msg.contains("native plan"), "{msg}");
        }
    }

    fn one_request(call: &str) -> Request {
        let py = format!(
            "from locust import HttpUser, task\nclass U(HttpUser):\n    @task\n    def a(self):\n        {call}\n"
        );
        let lf = parse_locustfile("locust/x.py", &py).unwrap_or_else(|e| panic!("{call}: {e}"));
        lf.tasks[0].requests[0].clone()
    }

    fn content_type(r: &Request) -> Option<&str> {
        r.headers
            .iter()
            .find(|(n, _)| n == http::header::CONTENT_TYPE)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn none_arguments_are_not_given_like_requests() {
        // requests: `json=None` / `data=None` send no body and no content type.
        for call in [
            "self.client.post('/a', json=None)",
            "self.client.post('/a', data=None)",
            "self.client.post('/a', None, None)",
            "self.client.get('/a', name=None, headers=None)",
        ] {
            let r = one_request(call);
            assert!(r.body.is_empty(), "{call}");
            assert_eq!(content_type(&r), None, "{call}");
            assert_eq!(r.name, "/a", "{call}");
        }
    }

    #[test]
    fn data_and_json_may_be_positional_as_in_requests() {
        // Session.post(url, data=None, json=None), put/patch(url, data=None).
        let r = one_request("self.client.post('/login', {'user': 'a b', 'pw': 'x&y'})");
        assert_eq!(&r.body[..], b"user=a+b&pw=x%26y");
        assert_eq!(content_type(&r), Some("application/x-www-form-urlencoded"));
        let r = one_request("self.client.post('/j', None, {'a': 1})");
        assert_eq!(&r.body[..], br#"{"a":1}"#);
        assert_eq!(content_type(&r), Some("application/json"));
        let r = one_request("self.client.put('/p', 'raw')");
        assert_eq!((&r.body[..], r.method.as_str()), (&b"raw"[..], "PUT"));
        let py = "from locust import HttpUser, task\nclass U(HttpUser):\n    @task\n    def a(self):\n        self.client.get('/a', {'q': 1})\n";
        let e = parse_locustfile("locust/x.py", py).expect_err("get takes only the url");
        assert!(e.what.contains("positional"), "{e}");
    }

    #[test]
    fn non_ascii_paths_are_percent_encoded_like_requests() {
        // requests' requote_uri: UTF-8 percent-encoding, reserved characters and `%XX` kept.
        let r = one_request("self.client.get('/café/ü?q=ä b&x=%41')");
        assert_eq!(r.path, "/caf%C3%A9/%C3%BC?q=%C3%A4%20b&x=%41");
        assert_eq!(r.name, r.path, "locust names a request by its path_url");
    }

    #[test]
    fn task_with_empty_parentheses_has_weight_one() {
        let py = "from locust import HttpUser, task\nclass U(HttpUser):\n    @task()\n    def a(self):\n        self.client.get('/')\n    @task(weight=3)\n    def b(self):\n        self.client.get('/b')\n";
        let lf = parse_locustfile("locust/x.py", py).expect("parses");
        assert_eq!((lf.tasks[0].weight, lf.tasks[1].weight), (1, 3));
    }

    #[test]
    fn task_without_request_is_reported_at_its_def_line() {
        let py = "from locust import HttpUser, task\nclass U(HttpUser):\n    @task\n    def a(self):\n        self.client.get('/')\n\n    @task\n    def idle(self):\n        pass\n";
        let e = parse_locustfile("locust/x.py", py).expect_err("idle task");
        assert_eq!(e.line, 8, "{e}");
        assert!(e.what.contains("task `idle` sends no request"), "{e}");
    }

    #[test]
    fn conf_accepts_known_keys_and_rejects_others() {
        let c = parse_conf(
            "c",
            "[locust]\n# comment\nusers: 5\nspawn_rate = 2.5\nrun-time = 1h30m\nhost = http://x.y-qa\nheadless = true\niterations = 100\n",
        )
        .expect("conf");
        assert_eq!(
            (c.users, c.spawn_rate, c.iterations),
            (Some(5), Some(2.5), Some(100))
        );
        assert_eq!(c.run_time, Some(Duration::from_secs(5400)));
        assert_eq!(c.host.as_deref(), Some("http://x.y-qa"));
        for (text, line, needle) in [
            ("users = 10\ntags = x\n", 2, "`tags`"),
            ("users = ten\n", 1, "positive integer"),
            ("run-time = soon\n", 1, "run-time"),
            ("spawn-rate = 0\n", 1, "spawn-rate"),
            ("just words\n", 1, "key = value"),
        ] {
            let e = parse_conf("locust/locust.conf", text).expect_err(text);
            assert_eq!(e.line, line, "{text}");
            assert!(e.what.contains(needle), "{e}");
        }
        // Iterations without run time: no default run time.
        let lf = parse_locustfile("f", TUTORIAL_PY).expect("lf");
        let w = to_workload(
            &LocustConf {
                iterations: Some(3),
                ..Default::default()
            },
            &lf,
        );
        assert_eq!((w.run_time, w.iterations), (None, Some(3)));
        let w = to_workload(&LocustConf::default(), &lf);
        assert_eq!(w.run_time, Some(plan::DEFAULT_RUN_TIME));
    }

    const SIMPLE: &str = "from locust import HttpUser, task\nclass U(HttpUser):\n    @task\n    def a(self):\n        self.client.get('/x')\n";

    #[test]
    fn deep_literals_are_refused_without_exhausting_the_stack() {
        for open in ["[", "(", "{'a': "] {
            let close = match open {
                "[" => "]",
                "(" => ")",
                _ => "}",
            };
            let deep = format!("{}1{}", open.repeat(20_000), close.repeat(20_000));
            let py = SIMPLE.replace("get('/x')", &format!("post('/x', json={deep})"));
            let e = parse_locustfile("locust/x.py", &py).expect_err("too deep");
            assert_eq!(e.line, 5);
            assert!(e.what.contains("nested more than 64 levels"), "{e}");
        }
        let many = format!("'a'{}", " 'b'".repeat(50_000));
        let py = SIMPLE.replace("get('/x')", &format!("post('/x', data={many})"));
        let lf = parse_locustfile("locust/x.py", &py).expect("adjacent strings concatenate");
        assert_eq!(lf.tasks[0].requests[0].body.len(), 50_001);
    }

    #[test]
    fn files_written_differently_are_read_as_python_reads_them() {
        let bom = format!("\u{feff}{SIMPLE}");
        let cr = SIMPLE.replace('\n', "\r");
        let crlf = SIMPLE.replace('\n', "\r\n");
        let ff = SIMPLE
            .replace("class U", "\x0c\nclass U")
            .replace("    @task", "\x0c    @task");
        for text in [bom.as_str(), &cr, &crlf, &ff] {
            let lf = parse_locustfile("locust/x.py", text).expect("valid Python");
            assert_eq!(lf.tasks[0].requests[0].path, "/x");
        }
        let conf = parse_conf("locust.conf", "\u{feff}users = 3\rrun-time = 1m\r").expect("conf");
        assert_eq!(conf.users, Some(3));
    }

    #[test]
    fn source_encodings() {
        let utf8 = source_text("f.py", format!("\u{feff}{SIMPLE}").as_bytes()).expect("utf-8");
        assert!(utf8.starts_with("from"));
        let latin = [
            b"# -*- coding: latin-1 -*-\n".as_slice(),
            SIMPLE.replace("/x", "/caf\u{e9}").as_bytes(),
        ]
        .concat();
        let latin: Vec<u8> = String::from_utf8(latin)
            .expect("utf8")
            .chars()
            .map(|c| c as u32 as u8)
            .collect();
        let text = source_text("f.py", &latin).expect("declared latin-1");
        let lf = parse_locustfile("f.py", &text).expect("parses");
        let path = &lf.tasks[0].requests[0].path;
        assert!(path == "/café" || path == "/caf%C3%A9", "{path}");
        let mut bad = SIMPLE.as_bytes().to_vec();
        bad.splice(60..60, [0xE9]);
        let e = source_text("locust/x.py", &bad).expect_err("not UTF-8");
        assert_eq!((e.file.as_str(), e.line), ("locust/x.py", 3));
        assert!(e.to_string().contains("byte 0xE9"), "{e}");
        let e = source_text(
            "f.py",
            b"#!/usr/bin/python\n# vim: set fileencoding=cp1252 :\n",
        )
        .expect_err("unsupported");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn refusals_never_echo_control_characters() {
        let py = SIMPLE.replace(
            "self.client.get('/x')",
            "self.client.get('/x')\n        os.system('\x1b[31m')",
        );
        let e = parse_locustfile("locust/\x07x.py", &py).expect_err("refused");
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(
            text.contains("\\u{1b}") && text.contains("locust/\\u{7}x.py:6"),
            "{text}"
        );
    }
}
