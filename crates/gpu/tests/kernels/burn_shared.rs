//! burn-wgpu on our device: a buffer owned by burn's runtime (cubecl, as a tower's output
//! tensor is) feeds the similarity kernel with no trip through the host.
use crate::common::{assert_close, gpu, Rng};
use cubecl::wgpu::{AutoCompiler, WgpuServer};
use prefscope_core::scoring::clip_score::{score_matrix, PairScore};
use prefscope_gpu::{block_on, DeviceMatrix};

#[test]
fn burn_buffers_feed_our_kernels_on_one_device() {
    let g = gpu();
    let device = g.burn_device().unwrap();
    assert_eq!(g.burn_device().unwrap(), device, "registered once");
    let client = cubecl::Device::Wgpu(device).client();
    let mut rng = Rng::new(31);
    let (images, texts) = (rng.embeddings(12, 40), rng.embeddings(5, 40));
    let mut on_device = Vec::new();
    for e in [&images, &texts] {
        let handle = client.create_from_slice(bytemuck::cast_slice(&e.data));
        client.flush().unwrap();
        let managed = client.get_resource::<WgpuServer<AutoCompiler>>(handle).unwrap();
        let r = managed.resource();
        on_device.push(DeviceMatrix::from_buffer(&g, &r.buffer, r.offset, e.len(), e.dim).unwrap());
    }
    let scores = block_on(g.score_matrix_on_device(&on_device[0], &on_device[1], PairScore::Cosine)).unwrap();
    let got = block_on(g.read_matrix(&scores)).unwrap();
    assert_close("shared", &got, &score_matrix(&images, &texts, PairScore::Cosine), 2e-6, 0.0);
}
