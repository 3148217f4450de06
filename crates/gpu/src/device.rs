//! Picking an adapter and opening a device, natively and in the browser, with the adapter's
//! real limits (wgpu's defaults cap storage bindings at 128 MiB).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::GpuError;

/// What the user asked for with `--device` (or the page's override).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// A GPU when one is present and is not a software fallback, else the CPU.
    #[default]
    Auto,
    /// Any adapter, software fallbacks included (errors when there is none).
    Gpu,
    Cpu,
}

impl DeviceChoice {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(format!("unknown device `{other}` (expected auto, gpu or cpu)")),
        }
    }
}

/// The adapter a [`Gpu`] runs on, for badges and benchmark tables.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub driver: String,
    /// A CPU rasteriser (lavapipe, llvmpipe, SwiftShader, WARP): correct but slow.
    pub software: bool,
    pub max_binding_bytes: u64,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}{})", self.name, self.backend, if self.software { ", software" } else { "" })
    }
}

/// Whether an adapter is a software fallback: by device type, and by name for browsers that
/// report SwiftShader as an ordinary adapter.
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    let known = ["swiftshader", "llvmpipe", "lavapipe", "softpipe", "warp", "microsoft basic render"];
    let name = format!("{} {}", info.name, info.driver).to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu || known.iter().any(|k| name.contains(k))
}

/// An open device with its queue, the compiled pipelines and the limits our chunking obeys.
/// Cloning shares the device.
#[derive(Clone)]
pub struct Gpu {
    pub(crate) instance: wgpu::Instance,
    pub(crate) adapter: wgpu::Adapter,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) summary: AdapterSummary,
    /// Largest storage binding the kernels may use; lowered by tests to force chunking.
    pub(crate) binding_limit: u64,
    pub(crate) lost: Arc<Mutex<Option<String>>>,
    pub(crate) pipelines: Arc<crate::kernel::PipelineCache>,
    /// Matrix products without workgroup memory (software adapters: see `linear.wgsl`).
    pub(crate) direct_matmul: bool,
    /// burn-wgpu's handle to this same device, once registered.
    #[cfg(feature = "burn")]
    pub(crate) burn: Arc<Mutex<Option<cubecl::wgpu::WgpuDevice>>>,
}

impl Gpu {
    /// Opens the best adapter: high performance first; software adapters only when
    /// `allow_software` (auto mode refuses them so that the CPU path runs instead).
    pub async fn new(allow_software: bool) -> Result<Self, GpuError> {
        // Vulkan/Metal/DX12/WebGPU first; OpenGL only when none of them has an adapter
        // (probing GL first prints display-server noise on headless machines).
        let mut last_error = String::new();
        let mut found = None;
        for backends in [wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY] {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
            desc.backends = wgpu::Backends::from_env().unwrap_or(backends);
            let instance = wgpu::Instance::new(desc);
            let options = wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            };
            match instance.request_adapter(&options).await {
                Ok(adapter) => {
                    found = Some((instance, adapter));
                    break;
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        let (instance, adapter) = found.ok_or(GpuError::NoAdapter(last_error))?;
        let info = adapter.get_info();
        if is_software(&info) && !allow_software {
            return Err(GpuError::NoAdapter(format!("only the software adapter `{}` is present", info.name)));
        }
        Self::from_adapter(instance, adapter).await
    }

    /// Opens a device on `adapter` with all of the adapter's limits and features (except
    /// mappable primary buffers, which burn-wgpu's sharing refuses).
    pub async fn from_adapter(instance: wgpu::Instance, adapter: wgpu::Adapter) -> Result<Self, GpuError> {
        let limits = adapter.limits();
        let features = adapter.features() - wgpu::Features::MAPPABLE_PRIMARY_BUFFERS;
        let desc = wgpu::DeviceDescriptor {
            label: Some("prefscope"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) =
            adapter.request_device(&desc).await.map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        Ok(Self::from_parts(instance, adapter, device, queue))
    }

    /// Wraps a device someone else opened (the towers' runtime, a host application).
    pub fn from_parts(
        instance: wgpu::Instance,
        adapter: wgpu::Adapter,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Self {
        let info = adapter.get_info();
        let limits = device.limits();
        let binding_limit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let lost = Arc::new(Mutex::new(None));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = flag.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        // Errors outside our error scopes are logged, never turned into a panic.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| log_error(&e.to_string())));
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: info.backend.to_string(),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            software: is_software(&info),
            max_binding_bytes: binding_limit,
        };
        Self {
            instance,
            adapter,
            device,
            queue,
            summary,
            binding_limit,
            lost,
            pipelines: Arc::new(crate::kernel::PipelineCache::default()),
            direct_matmul: is_software(&info),
            #[cfg(feature = "burn")]
            burn: Arc::default(),
        }
    }

    /// The adapter's own limits (the device was opened with all of them).
    pub fn adapter_limits(&self) -> wgpu::Limits {
        self.adapter.limits()
    }

    /// Whether the device can run f16 arithmetic in shaders (WebGPU's `shader-f16`).
    pub fn has_shader_f16(&self) -> bool {
        self.device.features().contains(wgpu::Features::SHADER_F16)
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The parts another wgpu user (burn-wgpu through cubecl's `WgpuSetup`) needs to run on
    /// this same device, so that embeddings never leave the GPU between towers and kernels.
    pub fn shared_parts(&self) -> (wgpu::Instance, wgpu::Adapter, wgpu::Device, wgpu::Queue, wgpu::Backend) {
        (
            self.instance.clone(),
            self.adapter.clone(),
            self.device.clone(),
            self.queue.clone(),
            self.adapter.get_info().backend,
        )
    }

    /// Caps the bytes of any one storage binding below the adapter's limit. Tests use tiny
    /// caps to prove that every kernel chunks its inputs.
    pub fn with_binding_limit(mut self, bytes: u64) -> Self {
        self.binding_limit = bytes.clamp(256, self.binding_limit);
        self
    }

    /// Chooses the matrix-product kernel: the barrier-free one (`true`, the default on
    /// software adapters) or the workgroup-tiled one (the default on GPUs). Tests and
    /// benchmarks run both on any adapter.
    pub fn with_direct_matmul(mut self, direct: bool) -> Self {
        self.direct_matmul = direct;
        self
    }

    pub fn direct_matmul(&self) -> bool {
        self.direct_matmul
    }

    pub fn binding_limit(&self) -> u64 {
        self.binding_limit
    }

    /// Fails with [`GpuError::DeviceLost`] once the device is gone.
    pub(crate) fn check_lost(&self) -> Result<(), GpuError> {
        match self.lost.lock().ok().and_then(|s| s.clone()) {
            Some(why) => Err(GpuError::DeviceLost(why)),
            None => Ok(()),
        }
    }

    /// Destroys the device (for tests of the device-lost path and for freeing memory early).
    pub fn destroy(&self) {
        if let Ok(mut slot) = self.lost.lock() {
            slot.get_or_insert_with(|| "destroyed by the application".into());
        }
        self.device.destroy();
    }
}

/// Opens a device for `choice`: `Ok(None)` means "use the CPU" (asked for, or auto found
/// only a software adapter or none).
pub async fn open(choice: DeviceChoice) -> Result<Option<Gpu>, GpuError> {
    match choice {
        DeviceChoice::Cpu => Ok(None),
        DeviceChoice::Gpu => Gpu::new(true).await.map(Some),
        DeviceChoice::Auto => match Gpu::new(false).await {
            Ok(gpu) => Ok(Some(gpu)),
            Err(GpuError::NoAdapter(_)) => Ok(None),
            Err(e) => Err(e),
        },
    }
}

/// Runs `probe` (opening a device) with the process's stderr held back: Vulkan loaders and
/// drivers print there while adapters are enumerated (Mesa: "XDG_RUNTIME_DIR is invalid or not
/// set"). Returns what was printed, for the caller to show only if opening failed, where it may
/// explain why.
#[cfg(not(target_arch = "wasm32"))]
pub fn holding_stderr<T>(probe: impl FnOnce() -> T) -> (T, String) {
    let held = gag::BufferRedirect::stderr().ok();
    let out = probe();
    let mut noise = String::new();
    if let Some(mut held) = held {
        let _ = std::io::Read::read_to_string(&mut held, &mut noise);
    }
    (out, noise.trim().to_string())
}

/// `error`, with what the driver printed (if anything) after it.
pub fn with_driver_noise(error: impl std::fmt::Display, noise: &str) -> String {
    if noise.is_empty() {
        error.to_string()
    } else {
        format!("{error}\nthe graphics driver said:\n{noise}")
    }
}

static WARNED: AtomicBool = AtomicBool::new(false);

fn log_error(message: &str) {
    if WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    #[cfg(target_arch = "wasm32")]
    web_sys::console::error_1(&format!("prefscope-gpu: {message}").into());
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("prefscope-gpu: {message}");
}
