// Weight access for kernels that read a large matrix at binding 2: f32 values.
@group(0) @binding(2) var<storage, read> w: array<f32>;

fn weight(i: u32) -> f32 {
    return w[i];
}
