// Image preprocessing: Pillow's bicubic resize with its fixed-point taps (computed on the
// host by prefscope-core, so both sides run the same integers), then crop or pad and
// normalisation into f32 channel planes.

struct Params {
    in_w: u32,
    in_h: u32,
    rw: u32,
    rh: u32,
    kx: u32,
    ky: u32,
    ow: u32,
    oh: u32,
    off_x: i32,
    off_y: i32,
    // Where this image's planes start in `pixels` (a batch of images is one buffer).
    base: u32,
    pad1: u32,
    mean: vec4<f32>,
    stdev: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
// RGBA8 pixels, one u32 each (R in the low byte).
@group(0) @binding(1) var<storage, read> rgba: array<u32>;
@group(0) @binding(2) var<storage, read> bounds_x: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> weights_x: array<i32>;
// Horizontally resampled rows (in_h × rw), RGB bytes packed in a u32.
@group(0) @binding(4) var<storage, read_write> temp: array<u32>;
@group(0) @binding(5) var<storage, read> bounds_y: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read> weights_y: array<i32>;
@group(0) @binding(7) var<storage, read_write> pixels: array<f32>;

const PRECISION_BITS: u32 = 22u;

fn clip8(s: i32) -> u32 {
    if (s >= (1i << 30u)) {
        return 255u;
    }
    if (s <= 0i) {
        return 0u;
    }
    return u32(s >> PRECISION_BITS);
}

fn byte(v: u32, c: u32) -> i32 {
    return i32((v >> (8u * c)) & 0xffu);
}

@compute @workgroup_size(256)
fn horizontal(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * WG + lid;
    if (idx >= p.in_h * p.rw) {
        return;
    }
    let y = idx / p.rw;
    let xx = idx % p.rw;
    let b = bounds_x[xx];
    var s = vec3<i32>(1i << (PRECISION_BITS - 1u));
    for (var k = 0u; k < b.y; k++) {
        let v = rgba[y * p.in_w + b.x + k];
        let w = weights_x[xx * p.kx + k];
        s += vec3<i32>(byte(v, 0u), byte(v, 1u), byte(v, 2u)) * w;
    }
    temp[idx] = clip8(s.x) | (clip8(s.y) << 8u) | (clip8(s.z) << 16u);
}

@compute @workgroup_size(256)
fn vertical(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * WG + lid;
    let plane = p.ow * p.oh;
    if (idx >= plane) {
        return;
    }
    let x = i32(idx % p.ow) + p.off_x;
    let y = i32(idx / p.ow) + p.off_y;
    var rgb = vec3<u32>(0u);
    if (x >= 0i && y >= 0i && u32(x) < p.rw && u32(y) < p.rh) {
        let b = bounds_y[u32(y)];
        var s = vec3<i32>(1i << (PRECISION_BITS - 1u));
        for (var k = 0u; k < b.y; k++) {
            let v = temp[(b.x + k) * p.rw + u32(x)];
            let w = weights_y[u32(y) * p.ky + k];
            s += vec3<i32>(byte(v, 0u), byte(v, 1u), byte(v, 2u)) * w;
        }
        rgb = vec3<u32>(clip8(s.x), clip8(s.y), clip8(s.z));
    }
    for (var c = 0u; c < 3u; c++) {
        pixels[p.base + c * plane + idx] = (f32(rgb[c]) * (1.0 / 255.0) - p.mean[c]) / p.stdev[c];
    }
}
