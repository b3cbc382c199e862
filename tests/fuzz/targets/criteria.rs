//! The criteria parser (`<=+10%`, `<600`, ...).

use keptn_native::evaluation::criteria::Criterion;

pub const SEEDS: &[&[u8]] = &[
    b"<=+10%", b"<600", b">=-5", b"=1", b"<=0.2", b">=-80%", b"<10ms", b"> = 3.5",
];

pub const DICTIONARY: &[&str] = &[
    "<",
    ">",
    "=",
    "+",
    "-",
    "%",
    ".",
    "e",
    "E",
    "1",
    "9999999999999999999999999",
    " ",
    "|",
    "1e400",
    "0x",
    "_",
    "\u{feff}",
    "٣",
    "NaN",
    "Inf",
];

pub fn check(bytes: &[u8]) -> Result<(), String> {
    let s = String::from_utf8_lossy(bytes);
    if let Ok(c) = Criterion::parse(&s) {
        let _ = c.target(100.0);
        let _ = c.target(0.0);
    }
    Ok(())
}
