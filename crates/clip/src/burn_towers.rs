//! The burn modules ([`crate::model`]) behind the encoder's interface, with the `burn` feature:
//! the benchmark's comparison rows (burn-flex on the CPU, burn-wgpu behind the `burn-wgpu`
//! feature). The page never links them: its towers are prefscope's own kernels on both paths.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::ClipConfig;
use crate::dtype::Dtype;
use crate::error::ClipError;
use crate::model::{burn_dtype, Clip};
use crate::weights::{Checkpoint, Source};

pub struct BurnClip {
    model: Clip,
    device: Device,
}

impl BurnClip {
    pub async fn load<S: Source>(
        config: &ClipConfig,
        ckpt: &Checkpoint<S>,
        device: Device,
        dtype: Dtype,
    ) -> Result<Self, ClipError> {
        Ok(BurnClip { model: Clip::load_from(config, ckpt, &device, burn_dtype(dtype)).await?, device })
    }

    /// Unnormalised text embeddings, as [`crate::cpu_towers::CpuClip::embed_text`].
    pub async fn embed_text(&self, ids: &[u32], tokens: usize, pool: &[usize]) -> Result<Vec<f32>, ClipError> {
        let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [pool.len(), tokens]), &self.device);
        read(self.model.text.forward(ids, pool)).await
    }

    /// Unnormalised image embeddings of `pixels: [batch, 3, size, size]`.
    pub async fn embed_pixels(&self, pixels: Vec<f32>, batch: usize) -> Result<Vec<f32>, ClipError> {
        let size = self.model.config.vision.image_size;
        let pixels = Tensor::<4>::from_data(TensorData::new(pixels, [batch, 3, size, size]), &self.device);
        read(self.model.vision.forward(pixels)).await
    }
}

/// Reads a burn result back to the host, turning backend failures into errors.
async fn read(tensor: Tensor<2>) -> Result<Vec<f32>, ClipError> {
    let data = tensor.into_data_async().await.map_err(|e| ClipError::Execution(format!("{e:?}")))?;
    data.try_into_vec::<f32>().map_err(|e| ClipError::Execution(format!("{e:?}")))
}
