//! `device="auto" | "gpu" | "cpu"`, as the command's `--device`: `auto` takes a hardware GPU
//! and falls back to the CPU when there is none (a software adapter is never chosen by
//! `auto`); `gpu` insists on any adapter. A process probes its adapters once: every later
//! call shares the device (cloning a `Gpu` shares it), as the compiled pipelines are its.

use std::sync::Mutex;

use prefscope_gpu::{block_on, holding_stderr, with_driver_noise, DeviceChoice, Gpu};

/// The devices opened so far, by choice (auto and gpu may differ: a software adapter).
static OPENED: Mutex<Vec<(DeviceChoice, Option<Gpu>)>> = Mutex::new(Vec::new());

/// The GPU to compute on (`None`: the CPU), and a sentence saying which.
pub fn open(device: &str) -> Result<(Option<Gpu>, String), String> {
    let choice = DeviceChoice::parse(device.trim()).map_err(|e| format!("device: {e}"))?;
    let gpu = if choice == DeviceChoice::Cpu {
        None
    } else {
        let mut opened = OPENED.lock().map_err(|_| "device: an earlier probe failed midway".to_string())?;
        match opened.iter().find(|(c, _)| *c == choice) {
            Some((_, gpu)) => gpu.clone(),
            None => {
                // The driver's chatter is shown only if opening fails.
                let (probed, noise) = holding_stderr(|| block_on(prefscope_gpu::open(choice)));
                let gpu = probed.map_err(|e| with_driver_noise(format!("device `{device}`: {e}"), &noise))?;
                opened.push((choice, gpu.clone()));
                gpu
            }
        }
    };
    let said = match &gpu {
        Some(gpu) => format!("gpu: {}", gpu.adapter()),
        None if choice == DeviceChoice::Cpu => "cpu".to_string(),
        None => "cpu (no hardware GPU adapter)".to_string(),
    };
    Ok((gpu, said))
}
