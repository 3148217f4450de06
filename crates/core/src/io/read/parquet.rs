//! Parquet through arrow record batches, read one batch at a time.

use arrow_array::ArrayRef;
use bytes::{Buf, Bytes};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::FooterTail;
use parquet::file::reader::{ChunkReader, Length};

use super::arrow_rows::BatchRow;
use super::rows::{Col, RowPos, Sink};
use super::Progress;
use crate::error::{ErrorKind, InputError};

const BATCH_ROWS: usize = 8192;

/// Reads every row; `open` gives the file (twice: the dictionaries are checked through a
/// reader of their own before the rows are decoded).
pub(super) fn read<R: ChunkReader + 'static>(
    open: &dyn Fn() -> Result<R, InputError>,
    sink: &mut Sink,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), InputError> {
    let file = open()?;
    let len = file.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| InputError::new(sink.location(None, None), parquet_error(&e.to_string())))?;
    let total = builder.metadata().file_metadata().num_rows().max(0) as u64;
    sink.set_metadata(key_values(builder.metadata()));
    check_offsets(builder.metadata()).map_err(|m| InputError::new(sink.location(None, None), m))?;
    check_dictionaries(&std::sync::Arc::new(open()?), builder.metadata(), None)
        .map_err(|m| InputError::new(sink.location(None, None), m))?;
    let positions = header(builder.schema(), sink)?;
    sink.reserve(expected_rows(total, len));
    let batches = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| InputError::new(sink.location(None, None), parquet_error(&e.to_string())))?;
    push_batches(batches, &positions, 0, total, sink, progress).map(|_| ())
}

/// The file's key-value metadata (pyarrow writes a table's schema metadata there), without
/// Arrow's own serialized schema.
fn key_values(metadata: &parquet::file::metadata::ParquetMetaData) -> Vec<(String, String)> {
    let pairs = metadata.file_metadata().key_value_metadata().map(Vec::as_slice).unwrap_or_default();
    pairs
        .iter()
        .filter(|kv| kv.key != "ARROW:schema")
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
        .collect()
}

/// Rows to make room for before reading: those the footer declares (growing the columns as
/// rows arrive copies them several times over), but no more than one per 32 bytes of the file
/// (four plain f64 log-probs), so that a footer cannot make a file reserve much more memory
/// than its own size. A file that compresses better just grows its columns as it is read.
fn expected_rows(declared: u64, file_len: u64) -> usize {
    declared.min(file_len / 32).try_into().unwrap_or(0)
}

/// Refuses column chunks whose offsets or sizes are negative: the parquet crate asserts they
/// are not (`ColumnChunkMetaData::byte_range`) and would panic on such a file.
pub(super) fn check_offsets(metadata: &parquet::file::metadata::ParquetMetaData) -> Result<(), ErrorKind> {
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for c in group.columns() {
            if c.data_page_offset() < 0 || c.dictionary_page_offset().is_some_and(|o| o < 0) || c.compressed_size() < 0
            {
                return Err(ErrorKind::Malformed {
                    format: "Parquet",
                    message: format!("row group {}, column `{}`: a negative offset or size", g + 1, c.column_path()),
                });
            }
        }
    }
    Ok(())
}

/// Refuses pages parquet 60 would panic on (found by fuzzing; a panic aborts the page in wasm):
/// a dictionary page that claims no values but holds bytes (the byte-array decoder divides by
/// the count), and a dictionary-encoded data page in a chunk that starts without a dictionary
/// (the decoder expects one to be set). A chunk that starts with its dictionary is read no
/// further; the pages of one without are read (decompressed, not decoded).
pub(super) fn check_dictionaries<R: ChunkReader + 'static>(
    reader: &std::sync::Arc<R>,
    metadata: &parquet::file::metadata::ParquetMetaData,
    row_groups: Option<&[usize]>,
) -> Result<(), ErrorKind> {
    use parquet::basic::{Encoding, Type as Physical};
    use parquet::column::page::{Page, PageReader};
    use parquet::file::serialized_reader::SerializedPageReader;
    for (g, group) in metadata.row_groups().iter().enumerate() {
        if row_groups.is_some_and(|wanted| !wanted.contains(&g)) {
            continue;
        }
        for c in group.columns() {
            let bad = |m: String| ErrorKind::Malformed {
                format: "Parquet",
                message: format!("row group {}, column `{}`: {m}", g + 1, c.column_path()),
            };
            let rows = group.num_rows().max(0) as usize;
            let mut pages = SerializedPageReader::new(reader.clone(), c, rows, None).map_err(|e| bad(e.to_string()))?;
            let strings = matches!(c.column_type(), Physical::BYTE_ARRAY | Physical::FIXED_LEN_BYTE_ARRAY);
            let mut first = true;
            while let Some(page) = pages.get_next_page().map_err(|e| bad(e.to_string()))? {
                let dictionary_encoded =
                    matches!(page.encoding(), Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY);
                match page {
                    Page::DictionaryPage { buf, num_values, .. } if first => {
                        if num_values == 0 && !buf.is_empty() && strings {
                            return Err(bad(format!("a dictionary page of {} bytes that claims no values", buf.len())));
                        }
                        break;
                    }
                    Page::DictionaryPage { .. } => return Err(bad("a dictionary page after the first page".into())),
                    _ if dictionary_encoded => {
                        return Err(bad("a dictionary-encoded page in a chunk that starts without a dictionary".into()))
                    }
                    _ => {}
                }
                first = false;
            }
        }
    }
    Ok(())
}

/// The column of each [`Col`] in `schema`, after the sink checked that the required ones are there.
fn header(schema: &arrow_schema::Schema, sink: &mut Sink) -> Result<Vec<Option<usize>>, InputError> {
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let positions = Col::positions(&names);
    sink.check_header(&|c| positions[c as usize].is_some())?;
    Ok(positions)
}

/// Pushes every row of `batches` (rows after `row` in the file); returns the last row pushed.
fn push_batches(
    batches: impl IntoIterator<Item = Result<arrow_array::RecordBatch, arrow_schema::ArrowError>>,
    positions: &[Option<usize>],
    mut row: u64,
    total: u64,
    sink: &mut Sink,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, InputError> {
    for batch in batches {
        let batch = batch.map_err(|e| {
            let pos = RowPos { row: row + 1, line: None };
            InputError::new(sink.location(Some(pos), None), parquet_error(&e.to_string()))
        })?;
        let columns: Vec<Option<&ArrayRef>> = positions.iter().map(|p| p.map(|i| batch.column(i))).collect();
        if bulk::push(&columns, row, batch.num_rows(), sink) {
            row += batch.num_rows() as u64;
            progress(Progress { done: row, total });
            continue;
        }
        for i in 0..batch.num_rows() {
            row += 1;
            sink.push(&BatchRow { columns: &columns, row: i }, RowPos { row, line: None })?;
        }
        progress(Progress { done: row, total });
    }
    Ok(row)
}

/// DPO or Diffusion-DPO rows from Arrow record batches already in memory (a pyarrow Table
/// handed over through the C data interface, say): the columns and every row are checked as
/// [`super::read_preferences`] checks a Parquet file's, rows counted from 1 across batches.
pub fn read_record_batches(
    name: &str,
    schema: &arrow_schema::Schema,
    batches: impl IntoIterator<Item = Result<arrow_array::RecordBatch, arrow_schema::ArrowError>>,
) -> Result<super::Preferences, InputError> {
    let mut sink = Sink::new(name);
    let positions = header(schema, &mut sink)?;
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    // Positions were taken from `schema`; a batch with other columns would be read wrongly.
    let checked = batches.into_iter().map(|batch| {
        let batch = batch?;
        let same = batch.schema().fields().iter().map(|f| f.name()).eq(names.iter().copied());
        if same {
            Ok(batch)
        } else {
            Err(arrow_schema::ArrowError::SchemaError(format!(
                "a record batch whose columns differ from the table's schema ({:?})",
                names
            )))
        }
    });
    push_batches(checked, &positions, 0, 0, &mut sink, &mut |_| {})?;
    sink.finish()
}

/// The byte ranges of a file that have been fetched, as a [`ChunkReader`]: the footer, and the
/// row group being read. Asking for anything else is an error (a file whose metadata points
/// outside its row groups).
struct Fetched {
    len: u64,
    pieces: Vec<(u64, Bytes)>,
}

impl Fetched {
    fn piece(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let end = start.checked_add(length as u64);
        self.pieces
            .iter()
            .find(|(at, b)| *at <= start && end.is_some_and(|end| end <= at + b.len() as u64))
            .map(|(at, b)| b.slice((start - at) as usize..(start - at) as usize + length))
            .ok_or_else(|| {
                ParquetError::General(format!("bytes {start}..+{length} lie outside the row group being read"))
            })
    }
}

impl Length for Fetched {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Fetched {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let (at, b) = self
            .pieces
            .iter()
            .find(|(at, b)| *at <= start && start <= at + b.len() as u64)
            .ok_or_else(|| ParquetError::General(format!("byte {start} lies outside the row group being read")))?;
        Ok(b.slice((start - at) as usize..).reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.piece(start, length)
    }
}

/// The column names of a Parquet file from its footer alone (`footer` holds the bytes from
/// `footer_start` to the end); empty when the metadata does not parse.
pub fn schema_names(len: u64, footer_start: u64, footer: Bytes) -> Vec<String> {
    let fetched = Fetched { len, pieces: vec![(footer_start, footer)] };
    ArrowReaderMetadata::load(&fetched, ArrowReaderOptions::default())
        .map(|m| m.schema().fields().iter().map(|f| f.name().clone()).collect())
        .unwrap_or_default()
}

/// DPO rows from a Parquet file read one row group at a time, from byte ranges the caller
/// fetches: the browser reads a `Blob` so, and never holds the whole file. Steps:
/// [`ParquetPieces::metadata_range`] on the file's last 8 bytes, [`ParquetPieces::open`] on
/// those bytes, then [`ParquetPieces::push_row_group`] for each of
/// [`ParquetPieces::row_groups`], then [`ParquetPieces::finish`]. Every row is checked as
/// [`super::read_preferences`] checks it, with the same messages.
pub struct ParquetPieces {
    len: u64,
    footer: (u64, Bytes),
    metadata: ArrowReaderMetadata,
    positions: Vec<Option<usize>>,
    sink: Sink,
    row: u64,
}

impl ParquetPieces {
    /// The bytes holding the file's metadata and footer, from its last 8 bytes.
    pub fn metadata_range(name: &str, len: u64, last8: &[u8]) -> Result<std::ops::Range<u64>, InputError> {
        let bad = |m: String| InputError::new(crate::Location::file(name), parquet_error(&m));
        let tail: [u8; 8] = last8.try_into().map_err(|_| bad("shorter than a Parquet footer".into()))?;
        let footer = FooterTail::try_new(&tail).map_err(|e| bad(e.to_string()))?;
        let size = footer.metadata_length() as u64 + 8;
        if size > len {
            return Err(bad(format!("its footer claims {size} bytes of metadata in a {len}-byte file")));
        }
        Ok(len - size..len)
    }

    /// Parses the metadata (`footer`: the bytes [`ParquetPieces::metadata_range`] named) and
    /// checks the columns.
    pub fn open(name: &str, len: u64, footer_start: u64, footer: Bytes) -> Result<Self, InputError> {
        let mut sink = Sink::new(name);
        let fetched = Fetched { len, pieces: vec![(footer_start, footer.clone())] };
        let metadata = ArrowReaderMetadata::load(&fetched, ArrowReaderOptions::default())
            .map_err(|e| InputError::new(sink.location(None, None), parquet_error(&e.to_string())))?;
        check_offsets(metadata.metadata()).map_err(|m| InputError::new(sink.location(None, None), m))?;
        sink.set_metadata(key_values(metadata.metadata()));
        let positions = header(metadata.schema(), &mut sink)?;
        let declared = metadata.metadata().file_metadata().num_rows().max(0) as u64;
        sink.reserve(expected_rows(declared, len));
        Ok(ParquetPieces { len, footer: (footer_start, footer), metadata, positions, sink, row: 0 })
    }

    /// The byte range each row group's columns span, in file order.
    pub fn row_groups(&self) -> Vec<std::ops::Range<u64>> {
        self.metadata
            .metadata()
            .row_groups()
            .iter()
            .map(|g| {
                let ranges = g.columns().iter().map(|c| c.byte_range());
                let start = ranges.clone().map(|(s, _)| s).min().unwrap_or(0);
                let end = ranges.map(|(s, l)| s.saturating_add(l)).max().unwrap_or(0);
                start.min(self.len)..end.min(self.len)
            })
            .collect()
    }

    /// Total rows the metadata declares.
    pub fn rows(&self) -> u64 {
        self.metadata.metadata().file_metadata().num_rows().max(0) as u64
    }

    /// Reads row group `index` from `bytes`, the range [`ParquetPieces::row_groups`] gave for it.
    pub fn push_row_group(
        &mut self,
        index: usize,
        start: u64,
        bytes: Bytes,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), InputError> {
        let fetched = Fetched { len: self.len, pieces: vec![self.footer.clone(), (start, bytes)] };
        let at = |sink: &Sink, row: u64| sink.location(Some(RowPos { row: row + 1, line: None }), None);
        let shared = std::sync::Arc::new(Fetched { len: self.len, pieces: fetched.pieces.clone() });
        check_dictionaries(&shared, self.metadata.metadata(), Some(&[index]))
            .map_err(|m| InputError::new(at(&self.sink, self.row), m))?;
        let batches = ParquetRecordBatchReaderBuilder::new_with_metadata(fetched, self.metadata.clone())
            .with_row_groups(vec![index])
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| InputError::new(at(&self.sink, self.row), parquet_error(&e.to_string())))?;
        let total = self.rows();
        self.row = push_batches(batches, &self.positions, self.row, total, &mut self.sink, progress)?;
        Ok(())
    }

    /// The rows read, checked as a whole (ids, lengths) as [`super::read_preferences`] checks them.
    pub fn finish(self) -> Result<super::Preferences, InputError> {
        self.sink.finish()
    }
}

/// The bulk path: a batch whose columns are all plain and valid is appended column by
/// column. Anything unusual (token arrays, nulls where values are required, a bad value)
/// returns `false` and the batch goes through the row-by-row checks, which report it.
mod bulk {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
    use arrow_array::Array;
    use arrow_schema::DataType;

    use super::*;
    use crate::io::read::rows::{TableMut, DIFFUSION};
    use crate::io::record::PairColumns;

    const TOKEN_COLUMNS: [Col; 6] = [
        Col::PolicyChosenTokens,
        Col::PolicyRejectedTokens,
        Col::ReferenceChosenTokens,
        Col::ReferenceRejectedTokens,
        Col::ChosenTokens,
        Col::RejectedTokens,
    ];

    /// Values of a float column with no nulls, all finite.
    fn required(a: Option<&ArrayRef>) -> Option<Vec<f64>> {
        let a = a?;
        if a.null_count() > 0 {
            return None;
        }
        let v: Vec<f64> = match a.data_type() {
            DataType::Float64 => a.as_primitive::<Float64Type>().values().to_vec(),
            DataType::Float32 => a.as_primitive::<Float32Type>().values().iter().map(|&x| x as f64).collect(),
            _ => return None,
        };
        v.iter().all(|x| x.is_finite()).then_some(v)
    }

    /// An optional float column (`Some(None)` when absent); present values must be finite.
    fn optional(a: Option<&ArrayRef>, ok: impl Fn(f64) -> bool) -> Option<Option<Vec<Option<f64>>>> {
        let Some(a) = a else { return Some(None) };
        let v: Vec<Option<f64>> = match a.data_type() {
            DataType::Float64 => a.as_primitive::<Float64Type>().iter().collect(),
            DataType::Float32 => a.as_primitive::<Float32Type>().iter().map(|x| x.map(f64::from)).collect(),
            _ => return None,
        };
        v.iter().flatten().all(|&x| x.is_finite() && ok(x)).then_some(Some(v))
    }

    fn lengths(a: Option<&ArrayRef>) -> Option<Option<Vec<Option<u32>>>> {
        let Some(a) = a else { return Some(None) };
        let v: Vec<Option<i64>> = match a.data_type() {
            DataType::Int64 => a.as_primitive::<Int64Type>().iter().collect(),
            DataType::Int32 => a.as_primitive::<Int32Type>().iter().map(|x| x.map(i64::from)).collect(),
            _ => return None,
        };
        v.into_iter()
            .map(|x| match x {
                None => Some(None),
                Some(l) => u32::try_from(l).ok().map(Some),
            })
            .collect::<Option<Vec<_>>>()
            .map(Some)
    }

    fn texts(a: Option<&ArrayRef>) -> Option<Option<Vec<Option<String>>>> {
        let Some(a) = a else { return Some(None) };
        Some(Some(match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().iter().map(|s| s.map(str::to_string)).collect(),
            DataType::LargeUtf8 => a.as_string::<i64>().iter().map(|s| s.map(str::to_string)).collect(),
            _ => return None,
        }))
    }

    /// Steps: whole numbers (`lengths` with signs).
    fn steps(a: Option<&ArrayRef>) -> Option<Option<Vec<Option<i64>>>> {
        let Some(a) = a else { return Some(None) };
        Some(Some(match a.data_type() {
            DataType::Int64 => a.as_primitive::<Int64Type>().iter().collect(),
            DataType::Int32 => a.as_primitive::<Int32Type>().iter().map(|x| x.map(i64::from)).collect(),
            _ => return None,
        }))
    }

    /// The first row (1-based, in the file) whose id is missing or null.
    fn unnamed(a: Option<&ArrayRef>, first_row: u64, n: usize) -> Option<u64> {
        let first = match a {
            None => (n > 0).then_some(0),
            Some(a) => (0..n).find(|&i| a.is_null(i)),
        };
        first.map(|i| first_row + i as u64 + 1)
    }

    /// Ids as text; a missing or null id is the 1-based row number.
    fn ids(a: Option<&ArrayRef>, first_row: u64, n: usize) -> Option<Vec<String>> {
        let fallback = |i: usize| (first_row + i as u64 + 1).to_string();
        let Some(a) = a else { return Some((0..n).map(fallback).collect()) };
        let text = |i: usize, s: Option<&str>| s.map_or_else(|| fallback(i), str::to_string);
        let number = |i: usize, x: Option<i64>| x.map_or_else(|| fallback(i), |x| x.to_string());
        Some(match a.data_type() {
            DataType::Int64 => a.as_primitive::<Int64Type>().iter().enumerate().map(|(i, x)| number(i, x)).collect(),
            DataType::Int32 => {
                a.as_primitive::<Int32Type>().iter().enumerate().map(|(i, x)| number(i, x.map(i64::from))).collect()
            }
            DataType::Utf8 => a.as_string::<i32>().iter().enumerate().map(|(i, s)| text(i, s)).collect(),
            DataType::LargeUtf8 => a.as_string::<i64>().iter().enumerate().map(|(i, s)| text(i, s)).collect(),
            _ => return None,
        })
    }

    pub(super) fn push(columns: &[Option<&ArrayRef>], first_row: u64, n: usize, sink: &mut Sink) -> bool {
        let col = |c: Col| columns[c as usize];
        match sink.table_mut() {
            TableMut::Dpo(table) => {
                if TOKEN_COLUMNS.iter().any(|c| col(*c).is_some()) {
                    return false;
                }
                let parsed = (|| {
                    Some(PairColumns {
                        id: ids(col(Col::Id), first_row, n)?,
                        prompt: texts(col(Col::Prompt))?,
                        chosen: texts(col(Col::Chosen))?,
                        rejected: texts(col(Col::Rejected))?,
                        logps: [
                            required(col(Col::PolicyChosen))?,
                            required(col(Col::PolicyRejected))?,
                            required(col(Col::ReferenceChosen))?,
                            required(col(Col::ReferenceRejected))?,
                        ],
                        chosen_length: lengths(col(Col::ChosenLength))?,
                        rejected_length: lengths(col(Col::RejectedLength))?,
                        preference_share: optional(col(Col::PreferenceShare), |x| (0.0..=1.0).contains(&x))?,
                        policy_kl_logps: optional(col(Col::PolicyKl), |_| true)?,
                        reference_kl_logps: optional(col(Col::ReferenceKl), |_| true)?,
                        subset: texts(col(Col::Subset))?,
                        category: texts(col(Col::Category))?,
                        step: steps(col(Col::Step))?,
                    })
                })();
                match parsed {
                    Some(c) => {
                        if table.unnamed_row.is_none() {
                            table.unnamed_row = unnamed(col(Col::Id), first_row, n);
                        }
                        table.extend_columns(c);
                        true
                    }
                    None => false,
                }
            }
            TableMut::Diffusion(table) => {
                let parsed = (|| {
                    let id = ids(col(Col::Id), first_row, n)?;
                    let mse: Vec<Vec<f64>> = DIFFUSION.iter().map(|c| required(col(*c))).collect::<Option<_>>()?;
                    mse.iter().flatten().all(|&x| x >= 0.0).then_some((id, mse))
                })();
                let Some((id, mse)) = parsed else { return false };
                table.id.extend(id);
                table.model_mse_chosen.extend(&mse[0]);
                table.model_mse_rejected.extend(&mse[1]);
                table.reference_mse_chosen.extend(&mse[2]);
                table.reference_mse_rejected.extend(&mse[3]);
                true
            }
            // Unpaired rows go through the row checks (their labels and batches included).
            TableMut::Unpaired | TableMut::Unknown => false,
        }
    }
}

fn parquet_error(message: &str) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    if lower.contains("eof") || lower.contains("footer") || lower.contains("out of range") || lower.contains("size of")
    {
        ErrorKind::Truncated(message.to_string())
    } else {
        ErrorKind::Malformed { format: "Parquet", message: message.to_string() }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_footer_cannot_reserve_more_rows_than_the_file_holds() {
        // A footer may claim 2^40 rows; the reservation follows the file's size instead.
        assert_eq!(super::expected_rows(1 << 40, 1_000), 31);
        assert_eq!(super::expected_rows(1_000_000, 50_000_000), 1_000_000);
    }
}
