//! Device setup and failure paths: the adapter is reported, the binding limit is the
//! adapter's, and a lost device gives a typed error instead of a panic.

use crate::common::gpu;
use prefscope_core::scoring::clip_score::PairScore;
use prefscope_core::scoring::embedding::Embeddings;
use prefscope_gpu::{block_on, DeviceChoice, GpuError};

#[test]
fn reports_the_adapter_and_its_limits() {
    let g = gpu();
    let a = g.adapter();
    assert!(!a.name.is_empty());
    // The device carries the adapter's own limits, not wgpu's defaults.
    let (adapter, device) = (g.adapter_limits(), g.device().limits());
    assert_eq!(device.max_storage_buffer_binding_size, adapter.max_storage_buffer_binding_size);
    assert_eq!(device.max_buffer_size, adapter.max_buffer_size);
    let limit = adapter.max_storage_buffer_binding_size.min(adapter.max_buffer_size);
    assert_eq!((g.binding_limit(), a.max_binding_bytes), (limit, limit), "{a:?}");
    // lavapipe in CI is a software adapter: auto mode must not pick it.
    if a.software {
        assert!(block_on(prefscope_gpu::open(DeviceChoice::Auto)).unwrap().is_none());
    }
    assert!(block_on(prefscope_gpu::open(DeviceChoice::Cpu)).unwrap().is_none());
    assert_eq!(DeviceChoice::parse("gpu"), Ok(DeviceChoice::Gpu));
    assert!(DeviceChoice::parse("tpu").is_err());
}

#[test]
fn a_lost_device_is_an_error_not_a_panic() {
    let g = gpu();
    let e = Embeddings::new(2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
    assert!(block_on(g.score_matrix(&e, &e, PairScore::Cosine)).is_ok());
    g.destroy();
    let err = block_on(g.score_matrix(&e, &e, PairScore::Cosine)).unwrap_err();
    assert!(matches!(err, GpuError::DeviceLost(_)), "{err:?}");
}
