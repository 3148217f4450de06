//! JSON Lines: one object per line. Python's `json.dumps` writes bare `NaN` and `Infinity`,
//! which are not JSON; they are accepted here so they can be reported as non-finite values
//! at their row and column rather than as a syntax error.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value};

use super::rows::{finite, Col, Got, RowPos, RowSource, Sink};
use super::{CountingReader, Progress};
use crate::error::{ErrorKind, InputError};

const NAN: &str = "\u{1}NaN";
const INF: &str = "\u{1}Infinity";
const NEG_INF: &str = "\u{1}-Infinity";

pub(super) fn read<R: Read>(
    reader: CountingReader<R>,
    total: u64,
    sink: &mut Sink,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), InputError> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut line = String::new();
    let (mut line_no, mut row) = (0u64, 0u64);
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| {
            let pos = RowPos { row: row + 1, line: Some(line_no + 1) };
            let kind = if e.kind() == std::io::ErrorKind::InvalidData {
                ErrorKind::Malformed { format: "JSON Lines", message: "line is not valid UTF-8".into() }
            } else if super::is_too_long(&e) {
                ErrorKind::Malformed { format: "JSON Lines", message: e.to_string() }
            } else {
                ErrorKind::Io(e.to_string())
            };
            InputError::new(sink.location(Some(pos), None), kind)
        })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        row += 1;
        let pos = RowPos { row, line: (line_no != row).then_some(line_no) };
        let ended = line.ends_with('\n');
        let object = parse_object(text, ended).map_err(|kind| InputError::new(sink.location(Some(pos), None), kind))?;
        sink.push(&JsonRow(&object), pos)?;
        if row.is_multiple_of(4096) {
            progress(Progress { done: reader.get_ref().count(), total });
        }
    }
    progress(Progress { done: total, total });
    Ok(())
}

/// Parses one line as an object; `ended` says whether the line had its newline, so a cut-off
/// last line is reported as truncation rather than bad syntax.
pub(super) fn parse_object(text: &str, ended: bool) -> Result<Map<String, Value>, ErrorKind> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(first) => match serde_json::from_str(&replace_non_finite(text)) {
            Ok(v) => v,
            Err(_) if first.is_eof() && !ended => return Err(ErrorKind::Truncated(first.to_string())),
            Err(_) => {
                return Err(ErrorKind::Malformed { format: "JSON Lines", message: first.to_string() });
            }
        },
    };
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ErrorKind::Malformed {
            format: "JSON Lines",
            message: format!("expected an object per line, found {}", type_name(&other)),
        }),
    }
}

/// Replaces bare `NaN`, `Infinity` and `-Infinity` outside strings by marker strings.
pub(super) fn replace_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let replaced = [("-Infinity", NEG_INF), ("Infinity", INF), ("NaN", NAN)]
            .into_iter()
            .find(|(token, _)| rest.starts_with(token));
        if let Some((token, marker)) = replaced {
            out.push('"');
            out.push_str(&marker.replace('\u{1}', "\\u0001"));
            out.push('"');
            rest = &rest[token.len()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

pub(super) fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == NAN => Some(f64::NAN),
        Value::String(s) if s == INF => Some(f64::INFINITY),
        Value::String(s) if s == NEG_INF => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// One parsed JSON object seen through [`RowSource`]; also used for JSON arrays in CSV cells.
pub(super) struct JsonRow<'a>(pub &'a Map<String, Value>);

impl JsonRow<'_> {
    fn get(&self, col: Col) -> Got<&Value> {
        match self.0.get(col.name()) {
            None => Got::Absent,
            Some(Value::Null) => Got::Null,
            Some(v) => Got::Value(v),
        }
    }
}

fn map<T>(got: Got<&Value>, f: impl FnOnce(&Value) -> Result<T, ErrorKind>) -> Result<Got<T>, ErrorKind> {
    match got {
        Got::Absent => Ok(Got::Absent),
        Got::Null => Ok(Got::Null),
        Got::Value(v) => f(v).map(Got::Value),
    }
}

pub(super) fn number_list(v: &Value) -> Result<Vec<f64>, ErrorKind> {
    let Value::Array(items) = v else {
        return Err(ErrorKind::WrongType { expected: "an array of numbers", found: type_name(v) });
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            as_number(item).ok_or_else(|| ErrorKind::WrongType {
                expected: "an array of numbers",
                found: format!("{} at index {i}", type_name(item)),
            })
        })
        .collect()
}

pub(super) fn text_list(v: &Value) -> Result<Vec<String>, ErrorKind> {
    let Value::Array(items) = v else {
        return Err(ErrorKind::WrongType { expected: "an array of strings", found: type_name(v) });
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            other => Err(ErrorKind::WrongType {
                expected: "an array of strings",
                found: format!("{} at index {i}", type_name(other)),
            }),
        })
        .collect()
}

impl RowSource for JsonRow<'_> {
    fn number(&self, col: Col) -> Result<Got<f64>, ErrorKind> {
        map(self.get(col), |v| {
            as_number(v).ok_or_else(|| ErrorKind::WrongType { expected: "a number", found: type_name(v) })
        })
    }

    fn integer(&self, col: Col) -> Result<Got<i64>, ErrorKind> {
        map(self.get(col), |v| {
            let n = as_number(v).ok_or_else(|| ErrorKind::WrongType { expected: "an integer", found: type_name(v) })?;
            let n = finite(n)?;
            if n.fract() != 0.0 {
                return Err(ErrorKind::WrongType { expected: "an integer", found: type_name(v) });
            }
            Ok(n as i64)
        })
    }

    fn text(&self, col: Col) -> Result<Got<String>, ErrorKind> {
        map(self.get(col), |v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(ErrorKind::WrongType { expected: "a string", found: type_name(other) }),
        })
    }

    fn id(&self, col: Col) -> Result<Got<String>, ErrorKind> {
        map(self.get(col), |v| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(ErrorKind::WrongType { expected: "a string or number", found: type_name(other) }),
        })
    }

    fn numbers(&self, col: Col) -> Result<Got<Vec<f64>>, ErrorKind> {
        map(self.get(col), number_list)
    }

    fn texts(&self, col: Col) -> Result<Got<Vec<String>>, ErrorKind> {
        map(self.get(col), text_list)
    }

    fn boolean(&self, col: Col) -> Result<Got<bool>, ErrorKind> {
        map(self.get(col), |v| match v {
            Value::Bool(b) => Ok(*b),
            other => Err(ErrorKind::WrongType { expected: "a boolean (true or false)", found: type_name(other) }),
        })
    }

    fn has(&self, col: Col) -> bool {
        self.0.contains_key(col.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_tokens_are_replaced_only_outside_strings() {
        let s = r#"{"a": NaN, "b": "NaN", "c": [-Infinity, Infinity], "d": "x\"NaN"}"#;
        let map = parse_object(s, true).unwrap();
        let row = JsonRow(&map);
        let a = row.get(Col::Id);
        assert_eq!(a, Got::Absent);
        assert!(as_number(&map["a"]).unwrap().is_nan());
        assert_eq!(map["b"], Value::String("NaN".into()));
        assert_eq!(number_list(&map["c"]).unwrap(), vec![f64::NEG_INFINITY, f64::INFINITY]);
        assert_eq!(map["d"], Value::String("x\"NaN".into()));
    }

    #[test]
    fn cut_off_line_is_truncation_but_bad_syntax_is_malformed() {
        assert!(matches!(parse_object(r#"{"a": 1, "b""#, false), Err(ErrorKind::Truncated(_))));
        assert!(matches!(parse_object(r#"{"a": 1,, }"#, true), Err(ErrorKind::Malformed { .. })));
        assert!(matches!(parse_object("[1, 2]", true), Err(ErrorKind::Malformed { .. })));
    }
}
