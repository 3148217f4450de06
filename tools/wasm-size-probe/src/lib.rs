//! The towers' ops on one burn device and nothing else, so the module's size is what burn
//! brings: on wgpu with `--features gpu`, on burn-flex without.
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::{embedding, layer_norm, linear};
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub async fn probe(n: usize) -> Vec<f32> {
    #[cfg(feature = "gpu")]
    let device = Device::from(burn::backend::wgpu::WgpuDevice::default());
    #[cfg(not(feature = "gpu"))]
    let device = Device::flex();
    let vals: Vec<f32> = (0..n * n).map(|i| (i as f32 * 0.37).sin()).collect();
    let x = Tensor::<2>::from_data(TensorData::new(vals.clone(), [n, n]), &device);
    let w = Tensor::<2>::from_data(TensorData::new(vals, [n, n]), &device);
    let ids = Tensor::<2, Int>::from_data(TensorData::new((0..n as i64).collect::<Vec<_>>(), [1, n]), &device);
    let e = embedding(w.clone(), ids).reshape([n, n]);
    let h = layer_norm(x.clone() + e, w.clone().sum_dim(0).reshape([n]), Some(w.clone().mean_dim(0).reshape([n])), 1e-5);
    let h = linear(h.unsqueeze::<3>(), w.clone(), Some(w.clone().sum_dim(1).reshape([n]))).reshape([n, n]);
    let s = softmax(h.clone().matmul(x.clone().swap_dims(0, 1)).mul_scalar(0.1), 1);
    let s = gelu(s.cast(FloatDType::F16).cast(FloatDType::F32).matmul(w));
    let rows = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64], [1]), &device);
    let out = s.select(0, rows);
    out.into_data_async().await.unwrap().try_to_vec::<f32>().unwrap()
}
