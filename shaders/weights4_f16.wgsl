// Weight access by four consecutive values (binding 2) for the vectorised matrix product:
// f16 values packed in pairs, two words per four values (unpacked by core WGSL).
@group(0) @binding(2) var<storage, read> w4: array<vec2<u32>>;

fn weight4(i: u32) -> vec4<f32> {
    let pair = w4[i];
    return vec4<f32>(unpack2x16float(pair.x), unpack2x16float(pair.y));
}
