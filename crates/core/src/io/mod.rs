//! Readers and writers: JSON Lines, CSV and Parquet in, with errors that name the file, row
//! and column; the records they carry; tables out.

pub mod read;
pub mod record;
pub mod write;
