//! Streaming readers for preference data in JSON Lines, CSV and Parquet.
//!
//! Each format exposes its rows through [`RowSource`]; the checks that make a row valid
//! (required columns, types, finiteness, lengths, ragged token arrays) live once, in
//! [`rows`], so every format reports the same error kinds at the same places.

mod annotated;
mod arrow_rows;
mod csv;
mod embeddings;
mod jsonl;
mod lists;
mod manifest;
mod pairs;
mod parquet;
mod ranked;
mod rows;
mod strength;

use std::io::Read;
use std::path::Path;

use bytes::Bytes;

pub use annotated::{read_annotated_pairs, AnnotatedRows};
pub use embeddings::{read_embedding_pairs, EmbeddingPairs};
pub use manifest::read_manifest;
pub use pairs::read_pairs;
pub use parquet::{read_record_batches, schema_names as parquet_column_names, ParquetPieces};
pub use ranked::read_ranked;
pub use strength::{read_ensemble, EnsembleRow};

use crate::error::{ErrorKind, InputError, Location};
use crate::io::record::{DiffusionTable, DpoTable, UnpairedTable};

/// File formats the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Parquet,
}

impl Format {
    /// Picks the format from a file name's extension (`.jsonl`/`.ndjson`/`.json`, `.csv`,
    /// `.parquet`/`.pq`).
    pub fn from_name(name: &str) -> Result<Self, InputError> {
        let ext = Path::new(name).extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" | "json" => Ok(Self::Jsonl),
            "csv" => Ok(Self::Csv),
            "parquet" | "pq" => Ok(Self::Parquet),
            _ => Err(InputError::new(Location::file(name), ErrorKind::UnknownFormat(name.to_string()))),
        }
    }
}

/// Preference data of any kind; which one is decided by the columns present.
// One value per loaded file, never stored in bulk: boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Preferences {
    Dpo(DpoTable),
    Diffusion(DiffusionTable),
    /// TRL's unpaired layout (`completion`, `label`, `policy_logps`, …), which KTO trains on.
    Unpaired(UnpairedTable),
}

/// How far a read has come, in units of `total` (bytes for text formats, rows for Parquet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// Where rows come from: a file on disk, or bytes already in memory (the browser's case).
pub enum Input<'a> {
    Path(&'a Path),
    Bytes { name: &'a str, bytes: Bytes },
}

impl Input<'_> {
    fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Bytes { name, .. } => name.to_string(),
        }
    }
}

/// The longest line (JSON Lines) or record (CSV) any reader accepts: far past any real row
/// (a pair with per-token arrays is kilobytes), so one runaway line is refused by name instead
/// of being buffered whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The UTF-8 byte-order mark that Windows tools put before CSV and JSON Lines exports.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `bytes` without a leading byte-order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// Refuses a line or record past [`MAX_LINE_BYTES`], naming its row.
pub(crate) fn check_line_length(format: &'static str, len: usize, at: &Location) -> Result<(), InputError> {
    if len > MAX_LINE_BYTES {
        return Err(InputError::new(at.clone(), ErrorKind::Malformed { format, message: too_long() }));
    }
    Ok(())
}

fn too_long() -> String {
    format!("a line of more than {} MiB, past the limit of one record", MAX_LINE_BYTES >> 20)
}

/// The columns a file has, read cheaply to pick its reader: a CSV header, the keys of the
/// first JSON Lines object, a Parquet schema (from the footer; no row is decoded). Empty when
/// that part of the file does not parse (the chosen reader then says why).
pub fn column_names(name: &str, bytes: &[u8]) -> Vec<String> {
    let bytes = strip_bom(bytes);
    match Format::from_name(name) {
        Ok(Format::Jsonl) => {
            let first = bytes.split(|&b| b == b'\n').find(|l| l.iter().any(|b| !b.is_ascii_whitespace()));
            match first.and_then(|l| serde_json::from_slice::<serde_json::Value>(l).ok()) {
                Some(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
                _ => Vec::new(),
            }
        }
        Ok(Format::Csv) => {
            let mut reader = ::csv::ReaderBuilder::new().from_reader(bytes);
            reader.headers().map(|h| h.iter().map(|c| c.trim().to_string()).collect()).unwrap_or_default()
        }
        Ok(Format::Parquet) => parquet_columns(bytes),
        Err(_) => Vec::new(),
    }
}

/// Parquet metadata past this many bytes is not sniffed (the reader still reads it).
const MAX_FOOTER: u64 = 16 << 20;

fn parquet_columns(bytes: &[u8]) -> Vec<String> {
    let len = bytes.len() as u64;
    let Ok(range) = ParquetPieces::metadata_range("", len, &bytes[bytes.len().saturating_sub(8)..]) else {
        return Vec::new();
    };
    if range.end - range.start > MAX_FOOTER {
        return Vec::new();
    }
    parquet::schema_names(len, range.start, Bytes::copy_from_slice(&bytes[range.start as usize..]))
}

/// The JSON objects of a small JSON Lines file (manifests, labelled pairs), each with its
/// location (row counted over non-blank lines, and the line); a bad line is an error naming it.
pub(crate) fn json_lines(name: &str, bytes: &[u8]) -> Result<Vec<(Location, serde_json::Value)>, InputError> {
    let text = std::str::from_utf8(strip_bom(bytes)).map_err(|e| {
        InputError::new(Location::file(name), ErrorKind::Malformed { format: "JSON Lines", message: e.to_string() })
    })?;
    let mut values = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Location::file(name).row(values.len() as u64 + 1).line(line_no as u64 + 1);
        check_line_length("JSON Lines", line.len(), &at)?;
        let value = serde_json::from_str(line).map_err(|e| {
            let kind = if e.is_eof() {
                ErrorKind::Truncated(e.to_string())
            } else {
                ErrorKind::Malformed { format: "JSON Lines", message: e.to_string() }
            };
            InputError::new(at.clone(), kind)
        })?;
        values.push((at, value));
    }
    Ok(values)
}

/// Reads DPO log-probabilities or Diffusion-DPO rows, whichever the columns say, calling
/// `progress` as it goes. Every row lands in the table or the read fails naming it.
pub fn read_preferences(
    input: Input<'_>,
    format: Option<Format>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Preferences, InputError> {
    let name = input.name();
    let format = match format {
        Some(f) => f,
        None => Format::from_name(&name)?,
    };
    let mut sink = rows::Sink::new(&name);
    match (format, input) {
        (Format::Parquet, Input::Path(path)) => {
            parquet::read(&|| std::fs::File::open(path).map_err(|e| io_error(&name, e)), &mut sink, progress)?;
        }
        (Format::Parquet, Input::Bytes { bytes, .. }) => parquet::read(&|| Ok(bytes.clone()), &mut sink, progress)?,
        (text_format, input) => {
            let (reader, total): (Box<dyn Read>, u64) = match input {
                Input::Path(path) => {
                    let file = std::fs::File::open(path).map_err(|e| io_error(&name, e))?;
                    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
                    (Box::new(file), total)
                }
                Input::Bytes { bytes, .. } => {
                    let total = bytes.len() as u64;
                    (Box::new(std::io::Cursor::new(bytes)), total)
                }
            };
            let reader = CountingReader::new(reader);
            match text_format {
                Format::Jsonl => jsonl::read(reader, total, &mut sink, progress)?,
                Format::Csv => csv::read(reader, total, &mut sink, progress)?,
                Format::Parquet => unreachable!("handled above"),
            }
        }
    }
    sink.finish()
}

/// Reads a DPO log-probability file; a Diffusion-DPO or unpaired file is an error naming the
/// columns.
pub fn read_dpo(path: &Path) -> Result<DpoTable, InputError> {
    match read_preferences(Input::Path(path), None, &mut |_| {})? {
        Preferences::Dpo(t) => Ok(t),
        other => Err(not_what(path, "DPO log-probabilities (pairs)", &other)),
    }
}

/// Reads an unpaired (KTO) file; pairs or Diffusion-DPO rows are an error naming the columns.
pub fn read_unpaired(path: &Path) -> Result<UnpairedTable, InputError> {
    match read_preferences(Input::Path(path), None, &mut |_| {})? {
        Preferences::Unpaired(t) => Ok(t),
        other => Err(not_what(path, "unpaired (KTO) rows", &other)),
    }
}

fn not_what(path: &Path, wanted: &str, found: &Preferences) -> InputError {
    let found = match found {
        Preferences::Dpo(_) => "DPO pairs (policy_chosen_logps, … columns)",
        Preferences::Diffusion(_) => "Diffusion-DPO data (model_mse_* columns)",
        Preferences::Unpaired(_) => "unpaired (KTO) rows (label, policy_logps, … columns)",
    };
    InputError::new(
        Location::file(path.display().to_string()),
        ErrorKind::InvalidValue(format!("this is {found}, not {wanted}")),
    )
}

fn io_error(name: &str, e: std::io::Error) -> InputError {
    InputError::new(Location::file(name), ErrorKind::Io(e.to_string()))
}

/// What text readers read through: it counts bytes (progress without knowing the parser),
/// drops a leading byte-order mark, and fails a line past [`MAX_LINE_BYTES`] before a parser
/// buffers it whole.
pub(crate) struct CountingReader<R> {
    inner: R,
    count: u64,
    last: Option<u8>,
    /// Bytes since the last newline.
    line: usize,
    /// The first bytes, read ahead to drop a byte-order mark (`None` before the first read).
    pending: Option<Vec<u8>>,
}

/// The error a runaway line gets; the readers turn it into a located [`ErrorKind::Malformed`].
pub(crate) fn is_too_long(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Other && e.to_string() == too_long()
}

impl<R: Read> CountingReader<R> {
    /// The first three bytes, without a byte-order mark: read whole even from a source that
    /// hands out one byte at a time.
    fn head(&mut self) -> std::io::Result<Vec<u8>> {
        let mut head = [0u8; 3];
        let mut got = 0;
        while got < head.len() {
            match self.inner.read(&mut head[got..])? {
                0 => break,
                k => got += k,
            }
        }
        self.count += got as u64;
        Ok(if head[..got] == *BOM { Vec::new() } else { head[..got].to_vec() })
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_none() {
            self.pending = Some(self.head()?);
        }
        let n = match self.pending.as_mut().filter(|p| !p.is_empty()) {
            Some(pending) => {
                let k = pending.len().min(buf.len());
                buf[..k].copy_from_slice(&pending[..k]);
                pending.drain(..k);
                k
            }
            None => {
                let n = self.inner.read(buf)?;
                self.count += n as u64;
                n
            }
        };
        if n > 0 {
            self.last = Some(buf[n - 1]);
            // A record ends at `\n` or a bare `\r` (the csv crate's rule).
            self.line = match buf[..n].iter().rposition(|&b| b == b'\n' || b == b'\r') {
                Some(i) => n - 1 - i,
                None => self.line + n,
            };
            if self.line > MAX_LINE_BYTES {
                return Err(std::io::Error::other(too_long()));
            }
        }
        Ok(n)
    }
}

impl<R> CountingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        CountingReader { inner, count: 0, last: None, line: 0, pending: None }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Whether the input read so far ends with a newline (a cut-off file usually does not).
    pub(crate) fn ends_with_newline(&self) -> bool {
        matches!(self.last, Some(b'\n' | b'\r'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out one byte per read, as a pipe may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((&b, rest)) = self.0.split_first() else { return Ok(0) };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = b;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn the_byte_order_mark_goes_however_the_bytes_arrive() {
        for text in [&b"\xEF\xBB\xBFid\n1\n"[..], b"\xEF\xBB\xBF", b"id\n", b"i", b""] {
            let want = strip_bom(text).to_vec();
            let mut got = Vec::new();
            CountingReader::new(Trickle(text)).read_to_end(&mut got).unwrap();
            assert_eq!(got, want, "{text:?}");
            let mut whole = Vec::new();
            let mut reader = CountingReader::new(text);
            reader.read_to_end(&mut whole).unwrap();
            assert_eq!((whole, reader.count()), (want, text.len() as u64));
        }
        // A bare carriage return ends a record for the line limit too.
        let lines = "x".repeat(1000) + "\r";
        let long = lines.repeat(MAX_LINE_BYTES / 1000 + 2);
        let mut sink = Vec::new();
        assert!(CountingReader::new(long.as_bytes()).read_to_end(&mut sink).is_ok());
    }
}
