//! Typed GPU failures. Callers fall back to the CPU path on [`GpuError::NoAdapter`]; the rest
//! name what went wrong so that no GPU problem ever becomes a panic (a panic kills the page).

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum GpuError {
    /// No WebGPU/Vulkan/Metal/DX12/GL adapter: use the CPU path.
    #[error("no GPU adapter available ({0})")]
    NoAdapter(String),
    /// The adapter refused a device with its own limits and features.
    #[error("the GPU adapter refused to open a device: {0}")]
    RequestDevice(String),
    /// The device went away (driver reset, tab backgrounded, `destroy`).
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("the GPU ran out of memory during {0}")]
    OutOfMemory(&'static str),
    /// One item is larger than a single storage binding may be, so it cannot be chunked.
    #[error("{what} needs a {bytes}-byte buffer, over this adapter's binding limit of {limit} bytes")]
    TooLarge { what: String, bytes: u64, limit: u64 },
    /// Inputs that disagree in length or shape.
    #[error("{0}")]
    Shape(String),
    /// wgpu rejected a command: a bug in prefscope, reported rather than crashing.
    #[error("GPU validation error in {op}: {message}")]
    Validation { op: &'static str, message: String },
}
