//! The fuzz targets: seeds, dictionaries, and what must hold for any input.

pub mod criteria;
pub mod event;
pub mod locust;
pub mod shipyard;
pub mod slo;

/// A refusal must be printable: no raw control characters (a newline included).
pub fn printable(what: &str, text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "{what} has a raw control character {c:?}: {text:?}"
        )),
        None => Ok(()),
    }
}

/// Tokens that matter to YAML parsers.
pub const YAML_TOKENS: &[&str] = &[
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!!str ",
    "\"",
    "'",
    "\t",
    "\r",
    "\u{feff}",
    "# c",
    "|\n",
    ">-\n",
    "---\n",
    "...\n",
    "? ",
    "%YAML 1.2\n",
    "~",
    "1e400",
    ".nan",
    "-.inf",
    "0x1F",
    "\\u0000",
    "\\",
    "\n  ",
    "\n",
    "null",
    "true",
];
