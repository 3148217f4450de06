// y = epilogue(x·W + b) read and written four values at a time, for shapes whose shared and
// output widths are multiples of 4 (every CLIP tower's): the same product as linear.wgsl with
// a quarter of the load instructions, which is what software adapters spend their time on.
// Barrier-free: each invocation holds a 4×4 block of results (4 rows, 4 neighbouring columns)
// and reads x along k and W along n as vec4. x: [rows, k], W: [k, n] (weights4_*.wgsl).
// Parameters: linear_params.wgsl.

@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y4: array<vec4<f32>>;

fn apply_epilogue4(v: vec4<f32>, idx: u32) -> vec4<f32> {
    switch p.epilogue {
        case EPILOGUE_QUICK_GELU: { return v / (1.0 + exp(-1.702 * v)); }
        case EPILOGUE_GELU: { return 0.5 * v * (1.0 + erf4(v * 0.70710678118654752)); }
        case EPILOGUE_RESIDUAL: { return y4[idx] + v; }
        default: { return v; } // EPILOGUE_NONE
    }
}

// 8×8 invocations; invocation (tx, ty) covers rows 4·ty.. and columns 4·tx.. of a 32×32 tile.
@compute @workgroup_size(8, 8)
fn linear4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let row0 = wid.y * 32u + lid3.y * 4u;
    let col4 = wid.x * 8u + lid3.x;
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    if (row0 >= p.rows || col4 >= n4) {
        return;
    }
    var acc: array<vec4<f32>, 4>;
    var rows: array<u32, 4>;
    for (var i = 0u; i < 4u; i++) {
        acc[i] = vec4<f32>(0.0);
        // Rows past the edge read the first row and are never stored.
        rows[i] = select(0u, row0 + i, row0 + i < p.rows) * k4;
    }
    for (var kk = 0u; kk < k4; kk++) {
        let wb = kk * 4u * n4 + col4;
        let w0 = weight4(wb);
        let w1 = weight4(wb + n4);
        let w2 = weight4(wb + 2u * n4);
        let w3 = weight4(wb + 3u * n4);
        for (var i = 0u; i < 4u; i++) {
            let xv = x4[rows[i] + kk];
            acc[i] = fma(vec4<f32>(xv.x), w0, fma(vec4<f32>(xv.y), w1, fma(vec4<f32>(xv.z), w2, fma(vec4<f32>(xv.w), w3, acc[i]))));
        }
    }
    var b = vec4<f32>(0.0);
    if (p.has_bias == 1u) {
        b = bias4[col4];
    }
    for (var i = 0u; i < 4u; i++) {
        if (row0 + i < p.rows) {
            let idx = (row0 + i) * n4 + col4;
            y4[idx] = apply_epilogue4(acc[i] + b, idx);
        }
    }
}
