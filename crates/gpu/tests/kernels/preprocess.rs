//! The preprocessing kernel against core on random images of many shapes (shrink, enlarge,
//! neither, non-square, a single column) for both presets: the bytes are identical, so the
//! normalised values agree within 1e-6.

use crate::common::{assert_close, gpu, tiny, Rng};
use prefscope_core::scoring::preprocess::{preprocess, Preset};
use prefscope_gpu::block_on;

#[test]
fn matches_core_for_both_presets() {
    let g = gpu();
    let mut rng = Rng::new(11);
    for &(w, h) in &[(37, 23), (100, 60), (20, 20), (32, 32), (31, 90), (1, 40), (300, 7), (64, 48)] {
        let rgba: Vec<u8> = (0..w * h * 4).map(|_| rng.below(256) as u8).collect();
        for preset in [Preset::clip(32), Preset::hps(32), Preset::clip(24)] {
            let want = preprocess(&rgba, w, h, &preset).unwrap();
            let got = block_on(g.preprocess(&rgba, w, h, &preset)).unwrap();
            assert_eq!((got.width, got.height), (want.width, want.height), "{w}×{h} {preset:?}");
            assert_close(&format!("{w}×{h} {preset:?}"), &got.data, &want.data, 1e-6, 0.0);
        }
    }
}

#[test]
fn refuses_bad_sizes_and_oversized_images() {
    let g = gpu();
    let err = block_on(g.preprocess(&[0u8; 10], 2, 2, &Preset::clip(8))).unwrap_err();
    assert!(err.to_string().contains("needs 16 bytes"), "{err}");
    let err = block_on(g.preprocess(&[], 0, 3, &Preset::clip(8))).unwrap_err();
    assert!(err.to_string().contains("no pixels"), "{err}");
    let big = vec![7u8; 40 * 40 * 4];
    let err = block_on(tiny(4096).preprocess(&big, 40, 40, &Preset::clip(8))).unwrap_err();
    assert!(err.to_string().contains("binding limit"), "{err}");
}
