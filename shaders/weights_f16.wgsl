// Weight access for kernels that read a large matrix at binding 2: f16 values packed in pairs
// (element i in the low half of word i/2 when i is even). Core WGSL unpacks them, so half
// weights need no shader-f16: they halve memory and bandwidth on every adapter.
@group(0) @binding(2) var<storage, read> w: array<u32>;

fn weight(i: u32) -> f32 {
    let pair = unpack2x16float(w[i >> 1u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
}
