//! One device for the towers and our kernels: registers this [`Gpu`]'s wgpu instance,
//! adapter, device and queue with cubecl's wgpu runtime through `WgpuSetup`. burn-wgpu 0.22
//! runs on that runtime and re-exports these very types (`burn_wgpu::WgpuDevice` is
//! `cubecl::wgpu::WgpuDevice`), so burn modules run on our device and their output buffers
//! (`CubeTensor::handle`) feed our kernels without leaving the GPU.

use cubecl::wgpu::{try_init_device, RuntimeOptions, WgpuDevice, WgpuSetup};

use crate::{Gpu, GpuError};

impl Gpu {
    /// The burn-wgpu (cubecl) device backed by this GPU's device and queue (registered once; later
    /// calls return the same device, as cubecl refuses a second registration of one setup).
    pub fn burn_device(&self) -> Result<WgpuDevice, GpuError> {
        let mut slot = self.burn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(device) = slot.as_ref() {
            return Ok(device.clone());
        }
        let (instance, adapter, device, queue, backend) = self.shared_parts();
        let setup = WgpuSetup { instance, adapter, device, queue, backend };
        let device = try_init_device(setup, RuntimeOptions::default())
            .map_err(|e| GpuError::RequestDevice(format!("cubecl's wgpu runtime refused the shared device: {e}")))?;
        *slot = Some(device.clone());
        Ok(device)
    }
}
