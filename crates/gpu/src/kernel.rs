//! The narrow host interface every kernel module uses: compiled pipelines (cached per
//! shader entry point), buffers, dispatch, and one submit-and-read-back step that turns
//! wgpu's error scopes and device loss into [`GpuError`]s.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::params::Uniform;
use crate::{Gpu, GpuError};

/// Threads per workgroup of the one-dimensional kernels (every shader uses this size).
pub(crate) const WG: u32 = 256;
/// Most workgroups along one dispatch dimension (WebGPU's guaranteed limit).
const MAX_GROUPS: u32 = 65_535;

/// A WGSL source from `shaders/`, compiled into the binary.
pub(crate) struct Shader {
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! shader {
    ($name:literal) => {
        $crate::kernel::Shader {
            name: $name,
            source: concat!(
                include_str!("../../../shaders/common.wgsl"),
                include_str!(concat!("../../../shaders/", $name, ".wgsl"))
            ),
        }
    };
    // A module assembled from several files: a kernel and the variant it is built with
    // (the weight type of the transformer kernels).
    ($name:literal, [$($part:literal),+]) => {
        $crate::kernel::Shader {
            name: $name,
            source: concat!(
                include_str!("../../../shaders/common.wgsl"),
                $(include_str!(concat!("../../../shaders/", $part, ".wgsl"))),+
            ),
        }
    };
}
pub(crate) use shader;

#[derive(Default)]
pub(crate) struct PipelineCache {
    map: Mutex<HashMap<(&'static str, &'static str), wgpu::ComputePipeline>>,
}

/// Workgroup counts covering `threads` threads of [`WG`]-sized groups, folded into two
/// dimensions past 65 535 groups (shaders flatten with `flat_id`).
pub(crate) fn groups_for(threads: u64) -> [u32; 3] {
    let groups = threads.div_ceil(WG as u64).max(1);
    if groups <= MAX_GROUPS as u64 {
        [groups as u32, 1, 1]
    } else {
        [MAX_GROUPS, groups.div_ceil(MAX_GROUPS as u64) as u32, 1]
    }
}

/// Workgroup counts for one group per item (segments, softmax groups), folded the same way.
pub(crate) fn groups_per_item(items: u64) -> [u32; 3] {
    let items = items.max(1);
    if items <= MAX_GROUPS as u64 {
        [items as u32, 1, 1]
    } else {
        [MAX_GROUPS, items.div_ceil(MAX_GROUPS as u64) as u32, 1]
    }
}

/// Where a submitted batch's error scopes are waiting.
pub(crate) struct Scope {
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
    op: &'static str,
}

impl Gpu {
    /// Starts collecting errors for one operation (pair with [`Gpu::finish`]).
    pub(crate) fn scope(&self, op: &'static str) -> Result<Scope, GpuError> {
        self.check_lost()?;
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        Ok(Scope { oom, validation, op })
    }

    /// How many distinct compute pipelines this device has created (each costs a shader
    /// compilation, slow on software adapters and repeated on every visit in a browser).
    pub fn pipelines_created(&self) -> usize {
        self.pipelines.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub(crate) fn pipeline(&self, shader: &Shader, entry: &'static str) -> wgpu::ComputePipeline {
        let mut map = self.pipelines.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((shader.name, entry))
            .or_insert_with(|| {
                let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(shader.name),
                    source: wgpu::ShaderSource::Wgsl(shader.source.into()),
                });
                self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .clone()
    }

    /// A storage buffer holding `data` (at least 4 bytes, as bindings may not be empty).
    /// Written through the queue rather than mapped at creation, so that a lost device gives
    /// an error at submission instead of a panic here.
    pub(crate) fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        self.filled(label, bytemuck::cast_slice(data), usage)
    }

    fn filled(&self, label: &str, bytes: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let size = (bytes.len() as u64).next_multiple_of(4).max(4);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        });
        let whole = bytes.len() / 4 * 4;
        if whole > 0 {
            self.queue.write_buffer(&buffer, 0, &bytes[..whole]);
        }
        if whole < bytes.len() {
            let mut tail = [0u8; 4];
            tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
            self.queue.write_buffer(&buffer, whole as u64, &tail);
        }
        buffer
    }

    /// A zeroed storage buffer of `bytes` (rounded up to 4).
    pub(crate) fn scratch(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    fn uniform<P: Uniform>(&self, params: &P) -> wgpu::Buffer {
        let mut bytes = bytemuck::bytes_of(params).to_vec();
        bytes.resize(bytes.len().next_multiple_of(16), 0);
        self.filled("params", &bytes, wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST)
    }

    /// Records one dispatch. Binding 0 is the `Params` uniform; `buffers` bind at 1, 2, …
    /// (the shader's entry point must use every binding it is given).
    pub(crate) fn dispatch<P: Uniform>(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        shader: &Shader,
        entry: &'static str,
        params: &P,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) {
        let numbered: Vec<(u32, &wgpu::Buffer)> = buffers.iter().enumerate().map(|(i, b)| (i as u32 + 1, *b)).collect();
        self.dispatch_at(encoder, shader, entry, params, &numbered, groups);
    }

    /// [`Gpu::dispatch`] with explicit binding numbers, for entry points that use a subset
    /// of their module's bindings.
    pub(crate) fn dispatch_at<P: Uniform>(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        shader: &Shader,
        entry: &'static str,
        params: &P,
        buffers: &[(u32, &wgpu::Buffer)],
        groups: [u32; 3],
    ) {
        let pipeline = self.pipeline(shader, entry);
        let uniform = self.uniform(params);
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        entries.extend(
            buffers.iter().map(|&(binding, b)| wgpu::BindGroupEntry { binding, resource: b.as_entire_binding() }),
        );
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pass =
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(entry), timestamp_writes: None });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
    }

    pub(crate) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("prefscope") })
    }

    /// Submits `encoder`, reads back `reads` (buffer, bytes) and reports the operation's
    /// errors: out of memory, validation, device loss.
    pub(crate) async fn finish(
        &self,
        scope: Scope,
        mut encoder: wgpu::CommandEncoder,
        reads: &[(&wgpu::Buffer, u64)],
    ) -> Result<Vec<Vec<u8>>, GpuError> {
        let staging: Vec<wgpu::Buffer> = reads
            .iter()
            .map(|&(buffer, bytes)| {
                let size = bytes.max(4).next_multiple_of(4);
                let s = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                encoder.copy_buffer_to_buffer(buffer, 0, &s, 0, size.min(buffer.size()));
                s
            })
            .collect();
        self.queue.submit([encoder.finish()]);
        // Both scopes are popped before either is awaited: a pop takes effect at once, and
        // another task's scopes pushed while this one waited would otherwise sit on top of
        // ours (WebGPU then fails the pop: "error scopes must be popped in reverse order").
        let (oom, validation) = (scope.oom.pop(), scope.validation.pop());
        let (oom, validation) = (oom.await, validation.await);
        if let Some(e) = oom {
            let _ = e;
            return Err(GpuError::OutOfMemory(scope.op));
        }
        if let Some(e) = validation {
            self.check_lost()?;
            return Err(GpuError::Validation { op: scope.op, message: e.to_string() });
        }
        let mut receivers = Vec::with_capacity(staging.len());
        for s in &staging {
            let (tx, rx) = futures_channel::oneshot::channel();
            s.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            receivers.push(rx);
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: None })
            .map_err(|e| GpuError::DeviceLost(e.to_string()))?;
        let mut out = Vec::with_capacity(staging.len());
        for ((s, rx), &(_, bytes)) in staging.iter().zip(receivers).zip(reads) {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.check_lost()?;
                    return Err(GpuError::DeviceLost(e.to_string()));
                }
                Err(_) => return Err(GpuError::DeviceLost("read-back was cancelled".into())),
            }
            let view = s.slice(..).get_mapped_range().map_err(|e| GpuError::DeviceLost(e.to_string()))?;
            out.push(view[..bytes as usize].to_vec());
            drop(view);
            s.unmap();
        }
        self.check_lost()?;
        Ok(out)
    }

    /// How many items of `bytes_per_item` one binding holds (at least 1).
    pub(crate) fn items_per_binding(&self, bytes_per_item: u64) -> usize {
        (self.binding_limit / bytes_per_item.max(1)).max(1) as usize
    }

    /// Fails when one item alone exceeds a binding.
    pub(crate) fn check_fits(&self, what: impl FnOnce() -> String, bytes: u64) -> Result<(), GpuError> {
        if bytes > self.binding_limit {
            return Err(GpuError::TooLarge { what: what(), bytes, limit: self.binding_limit });
        }
        Ok(())
    }
}

/// Reinterprets read-back bytes.
pub(crate) fn cast<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
    bytemuck::pod_collect_to_vec(bytes)
}

/// Splits `0..n` into ranges of at most `chunk` items (one empty range when `n` is 0 is
/// never produced: zero items give no chunks).
pub(crate) fn chunks(n: usize, chunk: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let chunk = chunk.max(1);
    (0..n.div_ceil(chunk)).map(move |k| k * chunk..((k + 1) * chunk).min(n))
}
