//! Raw exports for measure.mjs: no bindings, the numbers are all it needs.
use core::arch::wasm32::*;

/// `n` zeroed floats, leaked: the harness owns them for the module's lifetime.
#[no_mangle]
pub extern "C" fn alloc(n: usize) -> *mut f32 {
    Box::leak(vec![0f32; n].into_boxed_slice()).as_mut_ptr()
}

/// `c = a·b`, row-major, one thread: the call the CPU towers make (`cpu_kernels.rs`).
///
/// # Safety
/// The pointers come from [`alloc`] with room for `m·k`, `k·n` and `m·n` floats.
#[no_mangle]
pub unsafe extern "C" fn gemm_f32(m: usize, n: usize, k: usize, a: *const f32, b: *const f32, c: *mut f32) {
    gemm::gemm(
        m, n, k, c, 1, n as isize, false, a, 1, k as isize, b, 1, n as isize, 1.0, 1.0, false, false, false,
        gemm::Parallelism::None,
    );
}

#[inline(always)]
fn madd(fused: bool, a: v128, b: v128, c: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    if fused {
        return f32x4_relaxed_madd(a, b, c);
    }
    let _ = fused;
    f32x4_add(f32x4_mul(a, b), c)
}

/// `iters` rounds of 12 independent `acc·x + y` chains of f32x4 (8 flops each), in registers:
/// the arithmetic ceiling, with no loads or stores.
#[no_mangle]
pub extern "C" fn peak(iters: usize, fused: bool) -> f32 {
    let mut acc = [f32x4_splat(0.0); 12];
    let (x, y) = (f32x4_splat(0.999_999), f32x4_splat(1e-6));
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = madd(fused, *a, x, y);
        }
    }
    let s = acc.iter().fold(f32x4_splat(0.0), |s, &a| f32x4_add(s, a));
    f32x4_extract_lane::<0>(s)
}

/// prefscope's int8 product itself, the module the page runs (`crates/clip/src/qgemm.rs`).
#[allow(dead_code)]
#[path = "../../../crates/clip/src/qgemm.rs"]
mod qgemm;

/// `iters` rounds of 12 independent int8 dot products per round, with their
/// accumulators in registers, no loads or stores:
/// `relaxed` → `i32x4.relaxed_dot_i8x16_i7x16_add_s` (16 multiply-adds each), otherwise the
/// baseline `i32x4.dot_i16x8_s` plus `i32x4.add` (8 each). Each chain feeds its own
/// accumulator back as an operand, so nothing can be hoisted out of the loop. Returns a lane
/// so the work is kept.
#[no_mangle]
pub extern "C" fn peak_int8(iters: usize, relaxed: bool) -> i32 {
    let mut acc = [i32x4_splat(1); 12];
    let (x, y) = (i8x16_splat(3), i8x16_splat(5));
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = dot(relaxed, x, y, *a);
        }
    }
    let s = acc.iter().fold(i32x4_splat(0), |s, &a| i32x4_add(s, a));
    i32x4_extract_lane::<0>(s)
}

#[inline(always)]
fn dot(relaxed: bool, x: v128, y: v128, acc: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    if relaxed {
        return i32x4_relaxed_dot_i8x16_i7x16_add(x, y, acc);
    }
    let _ = (relaxed, y);
    i32x4_add(acc, i32x4_dot_i16x8(x, acc))
}

/// Operands for [`q8_product`]: `m×k` activations and `k×n` weights, quantized and packed as
/// the CPU towers do at load. Leaked: the harness keeps them for the module's lifetime.
#[no_mangle]
pub extern "C" fn q8_operands(m: usize, n: usize, k: usize) -> *mut (qgemm::QuantRows, qgemm::PackedQ8) {
    let x: Vec<f32> = (0..m * k).map(|i| (i as f32).sin()).collect();
    let w: Vec<f32> = (0..k * n).map(|i| (0.7 * i as f32).cos()).collect();
    let mut rows = qgemm::QuantRows::default();
    rows.quantize(&x, m, k);
    Box::leak(Box::new((rows, qgemm::PackedQ8::quantize(&w, k, n, false))))
}

/// The exact i32 sums of the product on the build's best instruction set (relaxed SIMD where
/// compiled in), every microtile folded into a checksum: the kernel alone, no epilogue.
///
/// # Safety
/// `ops` comes from [`q8_operands`].
#[no_mangle]
pub unsafe extern "C" fn q8_product(ops: *const (qgemm::QuantRows, qgemm::PackedQ8), m: usize) -> i32 {
    let (x, w) = &*ops;
    let mut check = 0i32;
    qgemm::product(x, w, qgemm::Isa::best(), 0..m, |_, _, tile| {
        check = tile.iter().flatten().fold(check, |c, &v| c.wrapping_add(v))
    });
    check
}
