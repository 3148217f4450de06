//! `--device`: which path runs, said once on stderr in prefscope's words. Vulkan loaders and
//! drivers print to the process's stderr while adapters are enumerated (Mesa: "XDG_RUNTIME_DIR
//! is invalid or not set"); that text is held back and shown only if opening a device fails,
//! where it may explain why.

use prefscope_gpu::{block_on, holding_stderr, with_driver_noise, Gpu, GpuError};

use crate::output::Result;

/// `--device`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Auto,
    Gpu,
    Cpu,
}

/// The GPU to compute on, or `None` for the CPU; announces the choice on stderr.
pub fn open(device: Device) -> Result<Option<Gpu>> {
    if device == Device::Cpu {
        eprintln!("computing on the CPU (--device cpu)");
        return Ok(None);
    }
    let (opened, noise) = holding_stderr(|| block_on(Gpu::new(device == Device::Gpu)));
    match opened {
        Ok(gpu) => {
            eprintln!("computing on {}", gpu.adapter());
            Ok(Some(gpu))
        }
        Err(GpuError::NoAdapter(why)) if device == Device::Auto => {
            eprintln!("computing on the CPU: no hardware GPU adapter ({why}; --device gpu runs on any adapter)");
            Ok(None)
        }
        Err(e) => Err(with_driver_noise(e, &noise).into()),
    }
}
