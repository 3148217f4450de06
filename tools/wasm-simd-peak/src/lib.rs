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
