//! `prefscope._prefscope`: the extension module under the `prefscope` Python package. It holds
//! no math of its own: every number comes from prefscope-core, prefscope-gpu and
//! prefscope-clip, as in the native command, so Python and `prefscope` give the same results.
//! Arrow crosses the boundary through the C data interface (no copy), embeddings leave as numpy
//! arrays over the Rust buffers, the GIL is released while Rust works, and every error is a
//! `prefscope.PrefscopeError` carrying the command's message.

mod device;
mod dpo;
mod scorer;
mod table;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    _prefscope,
    PrefscopeError,
    PyValueError,
    "Bad input or a failed computation, with the file, row, column or parameter it concerns."
);

/// Any displayable error as a [`PrefscopeError`] with that text.
pub(crate) fn error(e: impl std::fmt::Display) -> PyErr {
    PrefscopeError::new_err(e.to_string())
}

#[pymodule]
fn _prefscope(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PrefscopeError", m.py().get_type::<PrefscopeError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(dpo::dpo, m)?)?;
    m.add_function(wrap_pyfunction!(dpo::dpo_shard, m)?)?;
    m.add_function(wrap_pyfunction!(dpo::compare, m)?)?;
    m.add_function(wrap_pyfunction!(dpo::combine_shards, m)?)?;
    m.add_class::<scorer::Scorer>()?;
    Ok(())
}
