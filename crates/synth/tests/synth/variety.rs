//! The diversity split in the shapes world: sets whose unprompted attributes vary (background,
//! jitter, degradations) keep more diversity the prompts do not explain than sets where only
//! what the captions state varies.

use prefscope_clip::{Backend, Encoder};
use prefscope_core::scoring::diversity::Kernel;
use prefscope_synth::demo::model_files;
use prefscope_synth::variety::{split_sets, variety_sets};

#[test]
fn unprompted_variety_raises_the_schur_complement_entropy() {
    let encoder = Encoder::load(&model_files(), Backend::Cpu).unwrap();
    // 100 images per set: more rows than the demo model's 64 dimensions, which the cosine
    // kernel's split needs to say anything.
    let mut higher = 0;
    let mut report = Vec::new();
    for seed in 0..10 {
        let sets = variety_sets(1000 + seed, 100);
        let (prompted, unprompted) = pollster::block_on(split_sets(&encoder, &sets, &Kernel::Cosine)).unwrap();
        report.push(format!(
            "seed {seed}: sce {:.4} vs {:.4}, text part {:.3} vs {:.3}",
            prompted.sce, unprompted.sce, prompted.text_part, unprompted.text_part
        ));
        higher += usize::from(unprompted.sce > prompted.sce);
    }
    println!("{}", report.join("\n"));
    assert!(higher >= 9, "{higher} of 10 seeds\n{}", report.join("\n"));
}
