//! Limits and normalisation for text that comes from outside (events, resource files), applied
//! before any parser works on it, so that no input can exhaust the stack, cost more than
//! linear time, or put raw control characters into a message.
//!
//! Everything here is pure, iterative (no recursion) and linear in the input.

use std::borrow::Cow;
use std::collections::HashMap;

/// Deepest nesting of objects and arrays accepted in an event's `data`. Keptn's own events
/// nest about five levels; serde_json refuses beyond 128, and the journal wraps `data` once
/// more, so everything accepted here can always be read back.
pub const MAX_JSON_DEPTH: usize = 64;

/// Largest YAML resource (SLO, SLI, shipyard, load-test plan) parsed.
pub const MAX_YAML_BYTES: usize = 1 << 20;

/// Deepest nesting accepted in a YAML resource (block and flow levels together).
pub const MAX_YAML_DEPTH: usize = 64;

/// The deepest nesting of JSON arrays and objects in `bytes`, strings skipped. Works on any
/// bytes (it does not validate), in one pass.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i).unwrap_or(bytes.len()),
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// The index of the closing quote of the JSON string that opens at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The index just past the JSON value that starts at `start` (which is not whitespace),
/// found without parsing it: brackets are matched and strings skipped.
fn value_end(bytes: &[u8], start: usize) -> Result<usize, String> {
    match bytes.get(start) {
        None => Err("unexpected end of input".into()),
        Some(b'"') => string_end(bytes, start)
            .map(|e| e + 1)
            .ok_or_else(|| "unterminated string".into()),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = string_end(bytes, i).ok_or("unterminated string")?;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err("unclosed object or array".into())
        }
        Some(_) => {
            let mut i = start;
            while i < bytes.len()
                && !matches!(
                    bytes[i],
                    b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'['
                )
            {
                i += 1;
            }
            Ok(i)
        }
    }
}

/// The members of a JSON object, each value as its raw bytes, read without parsing the values:
/// a broken value (nested too deep, invalid UTF-8, `NaN`, `1e400`, a lone surrogate) spoils
/// only itself. A repeated name keeps its last value, as Go's `encoding/json` does.
#[derive(Debug, Default)]
pub struct RawObject<'a> {
    members: HashMap<String, &'a [u8]>,
    /// Something other than whitespace follows the object.
    pub trailing: bool,
}

impl<'a> RawObject<'a> {
    /// Splits a JSON object into members. Fails only when the object itself cannot be read.
    pub fn parse(bytes: &'a [u8]) -> Result<RawObject<'a>, String> {
        match Self::parse_partial(bytes) {
            (out, None) => Ok(out),
            (_, Some(e)) => Err(e),
        }
    }

    /// Like [`RawObject::parse`], but keeps the members read before the object broke off
    /// (a truncated event still has its `id` and `type` when `data` comes last), with the
    /// reason it broke off. An input that does not even start an object has no members.
    pub fn parse_partial(bytes: &'a [u8]) -> (RawObject<'a>, Option<String>) {
        let mut out = RawObject::default();
        let e = out.read(bytes).err();
        (out, e)
    }

    fn read(&mut self, bytes: &'a [u8]) -> Result<(), String> {
        let mut i = skip_ws(bytes, 0);
        if bytes.get(i) != Some(&b'{') {
            return Err("top level is not an object".into());
        }
        i = skip_ws(bytes, i + 1);
        if bytes.get(i) == Some(&b'}') {
            self.trailing = skip_ws(bytes, i + 1) < bytes.len();
            return Ok(());
        }
        loop {
            if bytes.get(i) != Some(&b'"') {
                return Err(format!("expected a member name at byte {i}"));
            }
            let key_end = string_end(bytes, i).ok_or("unterminated member name")? + 1;
            let key = serde_json::from_slice::<String>(&bytes[i..key_end])
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes[i + 1..key_end - 1]).into());
            i = skip_ws(bytes, key_end);
            if bytes.get(i) != Some(&b':') {
                return Err(format!("expected `:` after member {:?}", printable(&key)));
            }
            i = skip_ws(bytes, i + 1);
            let end = value_end(bytes, i)?;
            self.members.insert(key, &bytes[i..end]);
            i = skip_ws(bytes, end);
            match bytes.get(i) {
                Some(b',') => i = skip_ws(bytes, i + 1),
                Some(b'}') => {
                    self.trailing = skip_ws(bytes, i + 1) < bytes.len();
                    return Ok(());
                }
                _ => return Err(format!("expected `,` or `}}` at byte {i}")),
            }
        }
    }

    /// The raw bytes of a member's value: the exact name, else one that differs only in case
    /// (Go's `encoding/json`, which Keptn's services decode with, matches names that way).
    pub fn raw(&self, name: &str) -> Option<&'a [u8]> {
        self.members.get(name).copied().or_else(|| {
            self.members
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        })
    }

    /// A member read as text: strings as they are, numbers and booleans as written; `None`
    /// when absent, `null`, empty or unreadable.
    pub fn text(&self, name: &str) -> Option<String> {
        let raw = self.raw(name)?;
        let s = match serde_json::from_slice::<serde_json::Value>(raw).ok()? {
            serde_json::Value::String(s) => s,
            v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => v.to_string(),
            _ => return None,
        };
        (!s.trim().is_empty()).then_some(s)
    }
}

/// Parses an untrusted JSON value: its depth is checked first, so that whatever is returned
/// can be serialized and read back by serde_json.
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, String> {
    let depth = json_depth(bytes);
    if depth > MAX_JSON_DEPTH {
        return Err(format!(
            "nested {depth} levels deep (at most {MAX_JSON_DEPTH} are accepted)"
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Removes a leading UTF-8 byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Text that is not UTF-8: where the first bad byte is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("not UTF-8 (byte 0x{byte:02X} at column {column})")]
pub struct NotUtf8 {
    pub line: usize,
    pub column: usize,
    pub byte: u8,
}

/// Decodes UTF-8 text (a byte-order mark removed), or says on which line it is not UTF-8.
pub fn utf8_text(bytes: &[u8]) -> Result<&str, NotUtf8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line_start = good
            .iter()
            .rposition(|b| matches!(b, b'\n' | b'\r'))
            .map_or(0, |i| i + 1);
        NotUtf8 {
            line: python_lines_count(good),
            column: e.valid_up_to() - line_start + 1,
            byte: bytes[e.valid_up_to()],
        }
    })
}

/// The 1-based number of the line that the end of `bytes` is on (`\n`, `\r\n`, `\r` end lines).
fn python_lines_count(bytes: &[u8]) -> usize {
    let mut n = 1;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                n += 1;
                i += 1;
            }
            b'\r' | b'\n' => n += 1,
            _ => {}
        }
        i += 1;
    }
    n
}

/// `s` with control characters escaped (`\u{7}`), for messages and logs.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().collect()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// A YAML resource exceeds a limit; `line` is where (1-based).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum YamlLimit {
    #[error("the file has {0} bytes (at most {MAX_YAML_BYTES} are accepted)")]
    TooLarge(usize),
    #[error("line {line}: nested more than {MAX_YAML_DEPTH} levels deep")]
    TooDeep { line: usize },
}

impl YamlLimit {
    /// The message without the line (for errors that carry the line apart).
    pub fn what(&self) -> String {
        match self {
            YamlLimit::TooLarge(_) => self.to_string(),
            YamlLimit::TooDeep { .. } => format!("nested more than {MAX_YAML_DEPTH} levels deep"),
        }
    }

    pub fn line(&self) -> Option<usize> {
        match self {
            YamlLimit::TooLarge(_) => None,
            YamlLimit::TooDeep { line } => Some(*line),
        }
    }
}

/// Checks a YAML text against the size and depth limits before it is parsed (libyaml's cost
/// grows with the square of the nesting). The depth is an upper bound read from the text:
/// indentation levels, leading `- ` / `? ` indicators and open flow brackets outside quotes.
pub fn check_yaml(text: &str) -> Result<(), YamlLimit> {
    if text.len() > MAX_YAML_BYTES {
        return Err(YamlLimit::TooLarge(text.len()));
    }
    // Indentation widths of the enclosing block lines.
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<u8> = None;
    for (n, line) in text.split(['\n', '\r']).enumerate() {
        let b = line.as_bytes();
        let indent = b.iter().take_while(|c| **c == b' ').count();
        let content = &b[indent..];
        let blank = content.is_empty() || content[0] == b'#';
        let mut depth_here = 0usize;
        if quote.is_none() && flow == 0 && !blank {
            while indents.last().is_some_and(|w| *w >= indent) {
                indents.pop();
            }
            indents.push(indent);
            // `- - - x` nests sequences on one line.
            let mut j = 0;
            while j + 1 < content.len()
                && matches!(content[j], b'-' | b'?')
                && content[j + 1] == b' '
            {
                depth_here += 1;
                j += 2;
                while j < content.len() && content[j] == b' ' {
                    j += 1;
                }
            }
        }
        let mut prev = b' ';
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(q) => {
                    if c == b'\\' && q == b'"' {
                        i += 1;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => match c {
                    b'#' if prev == b' ' || prev == b'\t' => break,
                    b'\'' | b'"'
                        if matches!(
                            prev,
                            b' ' | b'\t' | b':' | b'-' | b'[' | b'{' | b',' | b'?'
                        ) =>
                    {
                        quote = Some(c)
                    }
                    b'[' | b'{' => {
                        flow += 1;
                        if indents.len() + depth_here + flow > MAX_YAML_DEPTH {
                            return Err(YamlLimit::TooDeep { line: n + 1 });
                        }
                    }
                    b']' | b'}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            prev = c;
            i += 1;
        }
        if indents.len() + depth_here + flow > MAX_YAML_DEPTH {
            return Err(YamlLimit::TooDeep { line: n + 1 });
        }
    }
    Ok(())
}

/// Splits text into lines the way Python does: `\n`, `\r\n` and a lone `\r` all end a line.
pub fn python_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        if s.is_empty() {
            rest = None;
            return None;
        }
        match s.find(['\n', '\r']) {
            None => {
                rest = None;
                Some(s)
            }
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(br#"{"a":[1,{"b":"[[[{"}]}"#), 3);
        assert_eq!(json_depth(br#""\"[""#), 0);
        assert_eq!(json_depth(b"1"), 0);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(json_depth(deep.as_bytes()), 100_000);
    }

    #[test]
    fn parse_json_refuses_deep_values_before_parsing() {
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(parse_json(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        let e = parse_json(deep.as_bytes()).expect_err("too deep");
        assert!(e.contains("65 levels"), "{e}");
        // What is accepted survives a round trip through serde_json inside another object.
        let v = parse_json(ok.as_bytes()).expect("ok");
        let wrapped = serde_json::to_string(&serde_json::json!({"e": {"data": v}})).expect("ser");
        assert!(serde_json::from_str::<serde_json::Value>(&wrapped).is_ok());
    }

    #[test]
    fn raw_object_reads_members_around_broken_values() {
        let mut bytes = br#"{"id":"a","n":1,"data":{"x":NaN,"y":"#.to_vec();
        bytes.extend_from_slice(b"\"\xff\xfe\"}, \"t\": true, \"e\": \"\", \"id\": \"b\"}");
        let o = RawObject::parse(&bytes).expect("object");
        assert_eq!(o.text("id").as_deref(), Some("b"), "the last one wins");
        assert_eq!(o.text("n").as_deref(), Some("1"));
        assert_eq!(o.text("t").as_deref(), Some("true"));
        assert_eq!(o.text("e"), None, "empty is absent");
        assert!(o.raw("data").is_some());
        assert!(serde_json::from_slice::<serde_json::Value>(o.raw("data").expect("d")).is_err());
        assert!(!o.trailing);
    }

    #[test]
    fn a_truncated_object_keeps_what_came_before() {
        let (o, e) = RawObject::parse_partial(br#"{"id":"a","type":"t","data":{"x":[1,"#);
        assert_eq!(o.text("id").as_deref(), Some("a"));
        assert_eq!(o.text("type").as_deref(), Some("t"));
        assert!(o.raw("data").is_none());
        assert!(e.is_some());
        let (o, e) = RawObject::parse_partial(b"x{");
        assert!(o.text("id").is_none() && e.is_some());
    }

    #[test]
    fn raw_object_errors() {
        assert!(RawObject::parse(b"[1]").is_err());
        assert!(RawObject::parse(b"{\"a\":").is_err());
        assert!(RawObject::parse(b"{\"a\" 1}").is_err());
        assert!(RawObject::parse(b"{\"a\":[}").is_err());
        assert!(RawObject::parse(b"{}x").expect("ok").trailing);
        assert!(RawObject::parse(b" {} ").is_ok());
    }

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("a\u{7}b\n"), "a\\u{7}b\\n");
        assert!(matches!(printable("plain ü"), Cow::Borrowed(_)));
    }

    #[test]
    fn truncate_cuts_at_a_char_boundary() {
        assert_eq!(truncate("aü", 2), "a");
        assert_eq!(truncate("abc", 5), "abc");
    }

    #[test]
    fn yaml_limits() {
        assert!(check_yaml("a:\n  b:\n    c: [1, {d: 2}]\n").is_ok());
        let flow = format!("a: {}{}\n", "{a: ".repeat(70), "}".repeat(70));
        assert_eq!(check_yaml(&flow), Err(YamlLimit::TooDeep { line: 1 }));
        let mut block = String::from("x: 1\n");
        for i in 0..70 {
            block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        assert_eq!(check_yaml(&block), Err(YamlLimit::TooDeep { line: 66 }));
        let seq = format!("{}x\n", "- ".repeat(70));
        assert!(check_yaml(&seq).is_err());
        // Brackets inside quotes or comments do not count.
        let quoted = format!("q: '{}'\n# {}\n", "{".repeat(100), "[".repeat(100));
        assert!(check_yaml(&quoted).is_ok());
        assert!(matches!(
            check_yaml(&"a".repeat(MAX_YAML_BYTES + 1)),
            Err(YamlLimit::TooLarge(_))
        ));
    }

    #[test]
    fn utf8_text_names_the_line() {
        assert_eq!(utf8_text(b"\xEF\xBB\xBFa: 1\n"), Ok("a: 1\n"));
        let e = utf8_text(b"a\nb\r\nc\rd\xE9f").expect_err("latin-1");
        assert_eq!(
            e,
            NotUtf8 {
                line: 4,
                column: 2,
                byte: 0xE9
            }
        );
        assert_eq!(e.to_string(), "not UTF-8 (byte 0xE9 at column 2)");
    }

    #[test]
    fn python_lines_split_like_python() {
        let l: Vec<&str> = python_lines("a\rb\r\nc\nd").collect();
        assert_eq!(l, ["a", "b", "c", "d"]);
        let l: Vec<&str> = python_lines("a\n\nb\n").collect();
        assert_eq!(l, ["a", "", "b"]);
    }
}
