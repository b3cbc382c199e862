//! Reading JSON the way Keptn's Go services do. They decode with `encoding/json` into
//! go-utils' structs, which means:
//!
//! - `null` leaves a field at its zero value (`"approval": null` is an absent approval,
//!   `"labels": null` no labels; Keptn up to 0.13 sends `"<task>": null` for every task without
//!   shipyard properties);
//! - field names match case-insensitively when no exact match exists (`"Project"`);
//! - unknown fields are ignored;
//! - a `null` value inside a `map[string]string` is the empty string.
//!
//! [`normalize`] rewrites a JSON object into the canonical form of a known struct shape, so
//! that the serde types of [`super::payload`] read it as Go would. Type mismatches are left in
//! place: they stay errors, as in Go.

use serde_json::{Map, Value};

/// How a field of a Go struct is decoded.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    /// Any value, kept as it is (after dropping a `null`).
    Plain,
    /// A nested struct.
    Struct(&'static GoStruct),
    /// A `map[string]string`: keys kept verbatim, `null` values become `""`.
    StringMap,
    /// A `[]string`: `null` elements become `""`.
    StringList,
}

/// The JSON fields of a Go struct, canonical names first. Embedded structs (`EventData`) are
/// given as further groups.
#[derive(Debug)]
pub struct GoStruct(pub &'static [&'static [(&'static str, Field)]]);

impl GoStruct {
    /// The canonical name and decoding of `key`: the exact match, else the first field that
    /// matches without regard to case (Go's rule).
    fn field(&self, key: &str) -> Option<(&'static str, Field)> {
        let all = || self.0.iter().flat_map(|g| g.iter());
        all()
            .find(|(name, _)| *name == key)
            .or_else(|| all().find(|(name, _)| name.eq_ignore_ascii_case(key)))
            .copied()
    }
}

/// Types whose JSON form is a Go struct of Keptn's.
pub trait GoShape {
    const SHAPE: &'static GoStruct;
}

/// Rewrites `value` into the canonical form of `shape`: nulls dropped, known field names in
/// their canonical spelling (a later duplicate wins, as in Go), unknown fields kept. A value
/// that is not an object is returned unchanged.
pub fn normalize(value: &Value, shape: &GoStruct) -> Value {
    let Some(obj) = value.as_object() else {
        return value.clone();
    };
    let mut out = Map::new();
    for (key, v) in obj {
        if v.is_null() {
            continue;
        }
        match shape.field(key) {
            None => {
                out.insert(key.clone(), v.clone());
            }
            Some((name, field)) => {
                out.insert(name.to_string(), normalize_field(v, field));
            }
        }
    }
    Value::Object(out)
}

fn normalize_field(v: &Value, field: Field) -> Value {
    match (field, v) {
        (Field::Plain, v) => v.clone(),
        (Field::Struct(s), v) => normalize(v, s),
        (Field::StringMap, Value::Object(m)) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = if v.is_null() {
                        Value::String(String::new())
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        (Field::StringList, Value::Array(a)) => Value::Array(
            a.iter()
                .map(|v| {
                    if v.is_null() {
                        Value::String(String::new())
                    } else {
                        v.clone()
                    }
                })
                .collect(),
        ),
        (Field::StringMap | Field::StringList, v) => v.clone(),
    }
}

/// Decodes `value` into `T` as Go's `encoding/json` would decode it into `T`'s Go struct.
pub fn from_value<T: serde::de::DeserializeOwned + GoShape>(
    value: &Value,
) -> Result<T, serde_json::Error> {
    serde_json::from_value(normalize(value, T::SHAPE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static INNER: GoStruct = GoStruct(&[&[("pass", Field::Plain), ("warning", Field::Plain)]]);
    static OUTER: GoStruct = GoStruct(&[
        &[
            ("project", Field::Plain),
            ("labels", Field::StringMap),
            ("names", Field::StringList),
        ],
        &[("approval", Field::Struct(&INNER))],
    ]);

    #[test]
    fn null_is_absent_names_fold_unknown_kept() {
        let v = json!({
            "Project": "p", "labels": {"Keep": "x", "gone": null}, "APPROVAL": {"Pass": "manual"},
            "evaluation": null, "extra": 1, "names": ["a", null]
        });
        assert_eq!(
            normalize(&v, &OUTER),
            json!({"project": "p", "labels": {"Keep": "x", "gone": ""},
                   "approval": {"pass": "manual"}, "extra": 1, "names": ["a", ""]})
        );
        assert_eq!(
            normalize(&json!({"approval": null, "labels": null}), &OUTER),
            json!({})
        );
    }

    #[test]
    fn exact_name_beats_folded_one() {
        static S: GoStruct = GoStruct(&[&[("a", Field::Plain), ("A", Field::Plain)]]);
        assert_eq!(normalize(&json!({"A": 1}), &S), json!({"A": 1}));
        assert_eq!(normalize(&json!({"a": 1}), &S), json!({"a": 1}));
    }

    #[test]
    fn wrong_types_are_left_for_the_decoder() {
        assert_eq!(
            normalize(&json!({"approval": "yes"}), &OUTER),
            json!({"approval": "yes"})
        );
        assert_eq!(normalize(&json!([1]), &OUTER), json!([1]));
    }
}
