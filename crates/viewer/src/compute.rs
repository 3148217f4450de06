//! Where the work runs: WebGPU when the adapter is a real GPU (or the user insists), the CPU
//! path otherwise, and the badge that says which and why. Both paths run the same crates.

use prefscope_clip::weights::Source;
use prefscope_clip::{Backend, DtypeChoice, Encoder, ModelFiles};
use prefscope_gpu::{DeviceChoice, Gpu, GpuError};

/// What the header shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Badge {
    /// `webgpu` or `cpu`: the badge's `data-device`.
    pub device: &'static str,
    /// The adapter's name, or "CPU".
    pub label: String,
    /// Why this device (shown on hover and under the badge).
    pub reason: String,
}

/// The opened device, shared by every view.
#[derive(Clone)]
pub struct Runtime {
    pub gpu: Option<Gpu>,
    pub badge: Badge,
}

impl PartialEq for Runtime {
    fn eq(&self, other: &Self) -> bool {
        self.badge == other.badge
    }
}

pub(crate) fn cpu(reason: String) -> Runtime {
    Runtime { gpu: None, badge: Badge { device: "cpu", label: "CPU".into(), reason } }
}

/// Opens the device `choice` asks for; every failure falls back to the CPU path with the
/// reason on the badge.
pub async fn open(choice: DeviceChoice) -> Runtime {
    if choice == DeviceChoice::Cpu {
        return cpu("the CPU path was chosen (device=cpu)".into());
    }
    if !crate::scope::has_webgpu() {
        return cpu("this browser has no WebGPU (navigator.gpu is missing)".into());
    }
    let insist = choice == DeviceChoice::Gpu;
    match Gpu::new(insist).await {
        Ok(gpu) => {
            let a = gpu.adapter();
            let reason = if a.software {
                "WebGPU on a software adapter, as asked (device=webgpu)".to_string()
            } else {
                "WebGPU on a hardware adapter".to_string()
            };
            let label = if a.name.is_empty() { "WebGPU".to_string() } else { format!("WebGPU · {}", a.name) };
            Runtime { gpu: Some(gpu), badge: Badge { device: "webgpu", label, reason } }
        }
        Err(GpuError::NoAdapter(why)) if !insist => cpu(format!(
            "WebGPU was not used: {why}; the CPU path is faster than a software adapter (override: ?device=webgpu)"
        )),
        Err(e) => cpu(format!("WebGPU failed: {e}")),
    }
}

/// A loaded CLIP-style model on the runtime's device.
pub struct Model {
    pub name: String,
    pub encoder: Encoder,
    /// What identifies these towers in the browser's caches: the name, a hash of the JSON
    /// files, the weights' size and the dtype they run in.
    pub key: String,
    /// The demo model shipped beside the page (whose reference direction ships with it).
    pub bundled: bool,
    /// The dtype asked for (the encoder says which one it resolved to).
    pub dtype: DtypeChoice,
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Runtime {
    pub fn backend(&self) -> Backend {
        match &self.gpu {
            Some(gpu) => Backend::Gpu(gpu.clone()),
            None => Backend::Cpu,
        }
    }

    /// Loads a model onto this device: its JSON files in `files`, its weights streamed from
    /// `weights` (the file `files.weights_name()` names) one tensor at a time.
    pub async fn load(
        &self,
        name: &str,
        files: &ModelFiles,
        weights: impl Source,
        dtype: DtypeChoice,
    ) -> Result<Model, String> {
        let weights_size = weights.size();
        let mut encoder =
            Encoder::load_streamed(files, weights, self.backend(), dtype).await.map_err(|e| format!("{name}: {e}"))?;
        encoder.batch = 64;
        let json: Vec<(&str, _)> = MODEL_FILES
            .iter()
            .chain(&OPEN_CLIP_FILES)
            .filter_map(|&file| Some((file, files.read(file).ok()??)))
            .collect();
        let hash = fnv(json.iter().flat_map(|(file, bytes)| [file.as_bytes(), bytes.as_ref()]));
        // The dtype too: a direction computed by q8 towers is not the f32 towers' direction.
        let key = format!("{name}#{hash:016x}-{weights_size}-{}", encoder.dtype().name());
        Ok(Model { name: name.to_string(), encoder, key, bundled: false, dtype })
    }
}

/// FNV-1a, 64 bits, over `parts` in order: cache keys, not a checksum against tampering.
pub fn fnv<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    parts.into_iter().flatten().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The JSON files of a model in transformers' layout (config first), and its weights.
pub const MODEL_FILES: [&str; 3] = ["config.json", "preprocessor_config.json", "tokenizer.json"];
pub const MODEL_WEIGHTS: &str = "model.safetensors";
/// The JSON files of an open_clip repository on the Hub, and its weights.
pub const OPEN_CLIP_FILES: [&str; 2] = ["open_clip_config.json", "tokenizer.json"];
pub const OPEN_CLIP_WEIGHTS: &str = "open_clip_model.safetensors";
