//! Values of one row of an Arrow record batch (a Parquet file's, or a pyarrow table's): typed
//! accessors for each Arrow type a column may hold, and the [`RowSource`] the row checks read.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use super::rows::{finite, Col, Got, RowSource};
use crate::error::ErrorKind;

/// Row `row` of a record batch's columns (in [`Col`] order; `None` for a column the file lacks).
pub(super) struct BatchRow<'a> {
    pub columns: &'a [Option<&'a ArrayRef>],
    pub row: usize,
}

pub(super) fn type_name(t: &DataType) -> String {
    format!("column of type {t}")
}

/// Element `i` of a numeric array as `f64`; `None` when the type is not numeric.
pub(super) fn number_at(array: &dyn Array, i: usize) -> Option<f64> {
    Some(match array.data_type() {
        DataType::Float64 => array.as_primitive::<Float64Type>().value(i),
        DataType::Float32 => array.as_primitive::<Float32Type>().value(i) as f64,
        DataType::Float16 => array.as_primitive::<Float16Type>().value(i).to_f64(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i) as f64,
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i) as f64,
        DataType::Int16 => array.as_primitive::<Int16Type>().value(i) as f64,
        DataType::Int8 => array.as_primitive::<Int8Type>().value(i) as f64,
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(i) as f64,
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(i) as f64,
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(i) as f64,
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(i) as f64,
        _ => return None,
    })
}

pub(super) fn integer_at(array: &dyn Array, i: usize) -> Option<i64> {
    Some(match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i) as i64,
        DataType::Int16 => array.as_primitive::<Int16Type>().value(i) as i64,
        DataType::Int8 => array.as_primitive::<Int8Type>().value(i) as i64,
        DataType::UInt64 => i64::try_from(array.as_primitive::<UInt64Type>().value(i)).unwrap_or(i64::MAX),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(i) as i64,
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(i) as i64,
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(i) as i64,
        _ => return None,
    })
}

pub(super) fn text_at(array: &dyn Array, i: usize) -> Option<String> {
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(i).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).to_string(),
        DataType::Utf8View => array.as_string_view().value(i).to_string(),
        _ => return None,
    })
}

/// The list element of row `i` for list-typed columns.
fn list_at(array: &dyn Array, i: usize) -> Option<ArrayRef> {
    match array.data_type() {
        DataType::List(_) => Some(array.as_list::<i32>().value(i)),
        DataType::LargeList(_) => Some(array.as_list::<i64>().value(i)),
        DataType::FixedSizeList(_, _) => Some(array.as_fixed_size_list().value(i)),
        _ => None,
    }
}

impl BatchRow<'_> {
    fn get<T>(&self, col: Col, f: impl FnOnce(&dyn Array, usize) -> Result<T, ErrorKind>) -> Result<Got<T>, ErrorKind> {
        match self.columns[col as usize] {
            None => Ok(Got::Absent),
            // A column of nulls only is Arrow's Null type, whose `is_null` answers false.
            Some(a) if a.is_null(self.row) || a.data_type() == &DataType::Null => Ok(Got::Null),
            Some(a) => f(a.as_ref(), self.row).map(Got::Value),
        }
    }

    fn list<T>(
        &self,
        col: Col,
        expected: &'static str,
        item: impl Fn(&dyn Array, usize) -> Option<T>,
    ) -> Result<Got<Vec<T>>, ErrorKind> {
        self.get(col, |a, i| {
            let wrong = || ErrorKind::WrongType { expected, found: type_name(a.data_type()) };
            let values = list_at(a, i).ok_or_else(wrong)?;
            (0..values.len())
                .map(|j| {
                    if values.is_null(j) {
                        return Err(ErrorKind::WrongType { expected, found: format!("null at index {j}") });
                    }
                    item(values.as_ref(), j).ok_or_else(wrong)
                })
                .collect()
        })
    }
}

impl RowSource for BatchRow<'_> {
    fn number(&self, col: Col) -> Result<Got<f64>, ErrorKind> {
        self.get(col, |a, i| {
            number_at(a, i)
                .ok_or_else(|| ErrorKind::WrongType { expected: "a number", found: type_name(a.data_type()) })
        })
    }

    fn integer(&self, col: Col) -> Result<Got<i64>, ErrorKind> {
        self.get(col, |a, i| {
            if let Some(n) = integer_at(a, i) {
                return Ok(n);
            }
            let x = number_at(a, i)
                .ok_or_else(|| ErrorKind::WrongType { expected: "an integer", found: type_name(a.data_type()) })?;
            let x = finite(x)?;
            if x.fract() != 0.0 {
                return Err(ErrorKind::WrongType { expected: "an integer", found: format!("number {x}") });
            }
            Ok(x as i64)
        })
    }

    fn text(&self, col: Col) -> Result<Got<String>, ErrorKind> {
        self.get(col, |a, i| {
            text_at(a, i).ok_or_else(|| ErrorKind::WrongType { expected: "a string", found: type_name(a.data_type()) })
        })
    }

    fn id(&self, col: Col) -> Result<Got<String>, ErrorKind> {
        self.get(col, |a, i| {
            text_at(a, i).or_else(|| integer_at(a, i).map(|n| n.to_string())).ok_or_else(|| ErrorKind::WrongType {
                expected: "a string or integer",
                found: type_name(a.data_type()),
            })
        })
    }

    fn numbers(&self, col: Col) -> Result<Got<Vec<f64>>, ErrorKind> {
        self.list(col, "a list of numbers", number_at)
    }

    fn texts(&self, col: Col) -> Result<Got<Vec<String>>, ErrorKind> {
        self.list(col, "a list of strings", text_at)
    }

    fn boolean(&self, col: Col) -> Result<Got<bool>, ErrorKind> {
        self.get(col, |a, i| match a.data_type() {
            DataType::Boolean => Ok(a.as_boolean().value(i)),
            other => Err(ErrorKind::WrongType { expected: "a boolean column", found: type_name(other) }),
        })
    }

    fn has(&self, col: Col) -> bool {
        self.columns[col as usize].is_some()
    }
}
