// Weight access by four consecutive values (binding 2) for the vectorised matrix product:
// f32 values.
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;

fn weight4(i: u32) -> vec4<f32> {
    return w4[i];
}
