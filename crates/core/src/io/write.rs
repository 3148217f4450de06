//! Output tables and their writers: JSON, JSON Lines, CSV and Parquet, with the same column
//! names in every format.

use std::io::Write;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, ListArray, RecordBatch, StringArray};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Schema};
use serde_json::{Map, Value};

/// One output column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Text(Vec<String>),
    Float(Vec<f64>),
    Int(Vec<i64>),
    /// One f32 vector per row (embeddings): a JSON array, in CSV the same array as text, in
    /// Parquet a list of float32.
    Vector(Vec<Vec<f32>>),
    /// A list of f64 per row (a pair's margins over steps; NaN as null in JSON).
    Floats(Vec<Vec<f64>>),
    /// A list of integers per row (the steps those values belong to).
    Ints(Vec<Vec<i64>>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Text(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Vector(v) => v.len(),
            Column::Floats(v) => v.len(),
            Column::Ints(v) => v.len(),
        }
    }

    fn json(&self, i: usize) -> Value {
        match self {
            Column::Text(v) => Value::String(v[i].clone()),
            // Non-finite floats have no JSON form; they become null rather than invalid JSON.
            Column::Float(v) => serde_json::Number::from_f64(v[i]).map_or(Value::Null, Value::Number),
            Column::Int(v) => Value::from(v[i]),
            Column::Vector(v) => Value::Array(
                v[i].iter()
                    .map(|&x| serde_json::Number::from_f64(x as f64).map_or(Value::Null, Value::Number))
                    .collect(),
            ),
            Column::Floats(v) => Value::Array(
                v[i].iter().map(|&x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)).collect(),
            ),
            Column::Ints(v) => Value::from(v[i].clone()),
        }
    }

    fn text(&self, i: usize) -> String {
        match self {
            Column::Text(v) => v[i].clone(),
            Column::Float(v) => format_float(v[i]),
            Column::Int(v) => v[i].to_string(),
            Column::Vector(_) | Column::Floats(_) | Column::Ints(_) => self.json(i).to_string(),
        }
    }
}

/// Shortest text that reads back to the same f64 (Rust's `Display` is round-trip exact).
fn format_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else {
        format!("{x}")
    }
}

/// JSON numbers for metrics; a non-finite value (an empty batch) becomes null.
pub fn metrics_json(metrics: &std::collections::BTreeMap<String, f64>) -> Value {
    Value::Object(
        metrics
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number)))
            .collect(),
    )
}

/// Named columns of equal length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutputTable {
    pub columns: Vec<(String, Column)>,
}

impl OutputTable {
    pub fn new(columns: Vec<(String, Column)>) -> Self {
        debug_assert!(columns.windows(2).all(|w| w[0].1.len() == w[1].1.len()), "ragged output table");
        Self { columns }
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// Row `i` as a JSON object.
    pub fn json_row(&self, i: usize) -> Value {
        let mut map = Map::new();
        for (name, col) in &self.columns {
            map.insert(name.clone(), col.json(i));
        }
        Value::Object(map)
    }

    /// All rows as a JSON array.
    pub fn json_rows(&self) -> Value {
        Value::Array((0..self.rows()).map(|i| self.json_row(i)).collect())
    }

    pub fn write_jsonl(&self, mut w: impl Write) -> std::io::Result<()> {
        for i in 0..self.rows() {
            serde_json::to_writer(&mut w, &self.json_row(i))?;
            w.write_all(b"\n")?;
        }
        w.flush()
    }

    pub fn write_csv(&self, w: impl Write) -> std::io::Result<()> {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(self.columns.iter().map(|(n, _)| n.as_str()))?;
        for i in 0..self.rows() {
            csv.write_record(self.columns.iter().map(|(_, c)| c.text(i)))?;
        }
        csv.flush()
    }

    /// Arrow form of the table (text as UTF-8, floats as f64, integers as i64, vectors as lists
    /// of f32).
    pub fn record_batch(&self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(n, c)| {
                let t = match c {
                    Column::Text(_) => DataType::Utf8,
                    Column::Float(_) => DataType::Float64,
                    Column::Int(_) => DataType::Int64,
                    Column::Vector(_) => DataType::List(Arc::new(Field::new("item", DataType::Float32, false))),
                    Column::Floats(_) => DataType::List(Arc::new(Field::new("item", DataType::Float64, false))),
                    Column::Ints(_) => DataType::List(Arc::new(Field::new("item", DataType::Int64, false))),
                };
                Field::new(n, t, false)
            })
            .collect();
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|(_, c)| -> ArrayRef {
                match c {
                    Column::Text(v) => Arc::new(StringArray::from_iter_values(v)),
                    Column::Float(v) => Arc::new(Float64Array::from(v.clone())),
                    Column::Int(v) => Arc::new(Int64Array::from(v.clone())),
                    Column::Vector(v) => {
                        let values = Float32Array::from(v.concat());
                        let offsets = OffsetBuffer::from_lengths(v.iter().map(Vec::len));
                        let field = Arc::new(Field::new("item", DataType::Float32, false));
                        Arc::new(ListArray::new(field, offsets, Arc::new(values), None))
                    }
                    Column::Floats(v) => {
                        let values = Float64Array::from(v.concat());
                        let offsets = OffsetBuffer::from_lengths(v.iter().map(Vec::len));
                        let field = Arc::new(Field::new("item", DataType::Float64, false));
                        Arc::new(ListArray::new(field, offsets, Arc::new(values), None))
                    }
                    Column::Ints(v) => {
                        let values = Int64Array::from(v.concat());
                        let offsets = OffsetBuffer::from_lengths(v.iter().map(Vec::len));
                        let field = Arc::new(Field::new("item", DataType::Int64, false));
                        Arc::new(ListArray::new(field, offsets, Arc::new(values), None))
                    }
                }
            })
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    }

    /// Writes Parquet (Snappy-compressed) to any writer.
    pub fn write_parquet(&self, w: impl Write + Send) -> Result<(), parquet::errors::ParquetError> {
        let batch = self.record_batch()?;
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let mut writer = parquet::arrow::ArrowWriter::try_new(w, batch.schema(), Some(props))?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(())
    }
}
