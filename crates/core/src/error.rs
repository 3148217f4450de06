//! Errors for bad input, each naming the file, row and column it concerns.

use std::fmt;

/// Where in an input a problem sits. Rows count records from 1 (a CSV header is not a row);
/// `line` is the physical line for text formats, when it differs from what `row` suggests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: String,
    pub row: Option<u64>,
    pub line: Option<u64>,
    /// Column names are the format's own, known at compile time.
    pub column: Option<&'static str>,
}

impl Location {
    pub fn file(file: impl Into<String>) -> Self {
        Self { file: file.into(), ..Self::default() }
    }
    pub fn row(mut self, row: u64) -> Self {
        self.row = Some(row);
        self
    }
    pub fn line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }
    pub fn column(mut self, column: &'static str) -> Self {
        self.column = Some(column);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(row) = self.row {
            write!(f, ": row {row}")?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column `{column}`")?;
        }
        Ok(())
    }
}

/// What is wrong. Tests match on the variant, people read the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("unknown input format (expected .jsonl, .csv or .parquet): {0}")]
    UnknownFormat(String),
    #[error("malformed {format}: {message}")]
    Malformed { format: &'static str, message: String },
    #[error("file ends in the middle of a record: {0}")]
    Truncated(String),
    #[error("required column is missing")]
    MissingColumn,
    #[error("value is missing (null or empty)")]
    MissingValue,
    #[error("expected {expected}, found {found}")]
    WrongType { expected: &'static str, found: String },
    #[error("value is not finite ({0})")]
    NonFinite(String),
    #[error("length must not be negative, found {0}")]
    NegativeLength(i64),
    #[error("per-token array has {len} entries but `{other}` has {other_len}")]
    Ragged { len: usize, other: String, other_len: usize },
    #[error("per-token log-probs sum to {token_sum} but the sequence value is {sequence}")]
    TokenSumMismatch { token_sum: f64, sequence: f64 },
    #[error("{0}")]
    InvalidValue(String),
    #[error("the input holds no rows")]
    Empty,
}

/// A problem with an input, located as precisely as the format allows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct InputError {
    pub location: Location,
    pub kind: ErrorKind,
}

impl InputError {
    pub fn new(location: Location, kind: ErrorKind) -> Self {
        Self { location, kind }
    }
}

/// A request that cannot be computed (a parameter out of range, a loss that needs a column
/// the input lacks). Separate from [`InputError`]: the file is fine, the question is not.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown loss type `{0}`")]
    UnknownLoss(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Input(Box<InputError>),
}

impl From<InputError> for ConfigError {
    fn from(e: InputError) -> Self {
        ConfigError::Input(Box::new(e))
    }
}
