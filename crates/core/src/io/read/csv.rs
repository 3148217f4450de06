//! CSV with a header row. Cells are text: numbers are parsed (`nan`/`inf` included, so they
//! can be reported), per-token arrays and token strings are JSON arrays inside a cell.

use std::io::Read;

use super::jsonl::{number_list, replace_non_finite, text_list};
use super::rows::{finite, Col, Got, RowPos, RowSource, Sink};
use super::{CountingReader, Progress};
use crate::error::{ErrorKind, InputError};

pub(super) fn read<R: Read>(
    reader: CountingReader<R>,
    total: u64,
    sink: &mut Sink,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), InputError> {
    let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(reader);
    let header_error = |e: csv::Error, sink: &Sink| InputError::new(sink.location(None, None), malformed(&e));
    let headers: Vec<String> =
        csv.headers().map_err(|e| header_error(e, sink))?.iter().map(|h| h.trim().to_string()).collect();
    let positions = Col::positions(&headers);
    sink.check_header(&|c| positions[c as usize].is_some())?;

    let mut record = csv::StringRecord::new();
    let mut row = 0u64;
    loop {
        let line = csv.position().line() + 1;
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                let pos = RowPos { row: row + 1, line: Some(line) };
                // A short last record in a file that stops without a newline was cut off.
                let is_last = csv.read_record(&mut csv::StringRecord::new()).map(|more| !more).unwrap_or(false)
                    && !csv.get_ref().ends_with_newline();
                let kind = match e.kind() {
                    csv::ErrorKind::UnequalLengths { len, expected_len, .. } if is_last && len < expected_len => {
                        ErrorKind::Truncated(format!("last record has {len} of {expected_len} fields"))
                    }
                    _ => malformed(&e),
                };
                return Err(InputError::new(sink.location(Some(pos), None), kind));
            }
        }
        row += 1;
        let pos = RowPos { row, line: Some(record.position().map(|p| p.line()).unwrap_or(line)) };
        // A quoted field may hold newlines, so a record can pass the limit in short lines.
        super::check_line_length("CSV", record.as_slice().len(), &sink.location(Some(pos), None))?;
        sink.push(&CsvRow { record: &record, positions: &positions }, pos)?;
        if row.is_multiple_of(4096) {
            progress(Progress { done: csv.get_ref().count(), total });
        }
    }
    progress(Progress { done: total, total });
    Ok(())
}

fn malformed(e: &csv::Error) -> ErrorKind {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            ErrorKind::Malformed { format: "CSV", message: "field is not valid UTF-8".into() }
        }
        csv::ErrorKind::UnequalLengths { len, expected_len, .. } => ErrorKind::Malformed {
            format: "CSV",
            message: format!("record has {len} fields but the header has {expected_len}"),
        },
        csv::ErrorKind::Io(io) if super::is_too_long(io) => {
            ErrorKind::Malformed { format: "CSV", message: io.to_string() }
        }
        csv::ErrorKind::Io(io) => ErrorKind::Io(io.to_string()),
        _ => ErrorKind::Malformed { format: "CSV", message: e.to_string() },
    }
}

struct CsvRow<'a> {
    record: &'a csv::StringRecord,
    positions: &'a [Option<usize>],
}

impl CsvRow<'_> {
    fn cell(&self, col: Col) -> Got<&str> {
        match self.positions[col as usize] {
            None => Got::Absent,
            Some(i) => match self.record.get(i).map(str::trim) {
                None | Some("") => Got::Null,
                Some(s) => Got::Value(s),
            },
        }
    }

    fn map<T>(&self, col: Col, f: impl FnOnce(&str) -> Result<T, ErrorKind>) -> Result<Got<T>, ErrorKind> {
        match self.cell(col) {
            Got::Absent => Ok(Got::Absent),
            Got::Null => Ok(Got::Null),
            Got::Value(s) => f(s).map(Got::Value),
        }
    }
}

fn parse_number(s: &str) -> Result<f64, ErrorKind> {
    s.parse::<f64>().map_err(|_| ErrorKind::WrongType { expected: "a number", found: format!("text {s:?}") })
}

fn parse_json(s: &str, expected: &'static str) -> Result<serde_json::Value, ErrorKind> {
    serde_json::from_str(s)
        .or_else(|_| serde_json::from_str(&replace_non_finite(s)))
        .map_err(|_| ErrorKind::WrongType { expected, found: format!("text {:?}", truncate(s)) })
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

impl RowSource for CsvRow<'_> {
    fn number(&self, col: Col) -> Result<Got<f64>, ErrorKind> {
        self.map(col, parse_number)
    }

    fn integer(&self, col: Col) -> Result<Got<i64>, ErrorKind> {
        self.map(col, |s| {
            if let Ok(n) = s.parse::<i64>() {
                return Ok(n);
            }
            let x = finite(parse_number(s)?)?;
            if x.fract() != 0.0 {
                return Err(ErrorKind::WrongType { expected: "an integer", found: format!("text {s:?}") });
            }
            Ok(x as i64)
        })
    }

    fn text(&self, col: Col) -> Result<Got<String>, ErrorKind> {
        // Text keeps its spaces; only emptiness is judged on the trimmed cell.
        match self.cell(col) {
            Got::Value(_) => {
                Ok(Got::Value(self.record.get(self.positions[col as usize].unwrap_or(0)).unwrap_or("").to_string()))
            }
            Got::Absent => Ok(Got::Absent),
            Got::Null => Ok(Got::Null),
        }
    }

    fn id(&self, col: Col) -> Result<Got<String>, ErrorKind> {
        self.map(col, |s| Ok(s.to_string()))
    }

    fn numbers(&self, col: Col) -> Result<Got<Vec<f64>>, ErrorKind> {
        self.map(col, |s| number_list(&parse_json(s, "a JSON array of numbers")?))
    }

    fn texts(&self, col: Col) -> Result<Got<Vec<String>>, ErrorKind> {
        self.map(col, |s| text_list(&parse_json(s, "a JSON array of strings")?))
    }

    fn boolean(&self, col: Col) -> Result<Got<bool>, ErrorKind> {
        self.map(col, |s| match s.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(ErrorKind::WrongType {
                expected: "a boolean (true, false, 1 or 0)",
                found: format!("text {:?}", truncate(s)),
            }),
        })
    }

    fn has(&self, col: Col) -> bool {
        self.positions[col as usize].is_some()
    }
}
