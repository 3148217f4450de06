//! Quality degradations that do not depend on the caption: noise, blur, blockiness and low
//! contrast, each with a severity in [0, 1]. Quality `q = Π (1 − severity)`.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::raster::Image;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Noise,
    Blur,
    Blocky,
    Contrast,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Noise, Kind::Blur, Kind::Blocky, Kind::Contrast];
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Degradation {
    pub kind: Kind,
    /// 0 leaves the image as it is; 1 is the strongest.
    pub severity: f32,
    /// Seeds the noise, so the same degradation gives the same pixels.
    pub seed: u64,
}

/// The quality of an image after these degradations.
pub fn quality(degradations: &[Degradation]) -> f32 {
    degradations.iter().map(|d| 1.0 - d.severity.clamp(0.0, 1.0)).product()
}

/// Random degradations: none a quarter of the time, else one or two kinds with severities
/// spread over [0.15, 1], so that q covers [0, 1].
pub fn random(rng: &mut impl Rng) -> Vec<Degradation> {
    if rng.random_bool(0.25) {
        return Vec::new();
    }
    let count = if rng.random_bool(0.7) { 1 } else { 2 };
    let mut kinds = Kind::ALL.to_vec();
    (0..count)
        .map(|_| Degradation {
            kind: kinds.swap_remove(rng.random_range(0..kinds.len())),
            severity: rng.random_range(0.15..=1.0),
            seed: rng.random(),
        })
        .collect()
}

/// Applies the degradations in order. Sizes (blur radius, block size) scale with the canvas,
/// so a 256-pixel rendering degrades like the 64-pixel one the model sees.
pub fn apply(image: &mut Image, degradations: &[Degradation]) {
    for d in degradations {
        let s = d.severity.clamp(0.0, 1.0);
        if s == 0.0 {
            continue;
        }
        match d.kind {
            Kind::Noise => noise(image, 70.0 * s, d.seed),
            Kind::Blur => blur(image, (s * image.width as f32 / 16.0).max(0.5)),
            Kind::Blocky => blocky(image, (1.0 + s * image.width as f32 / 8.0).round() as u32),
            Kind::Contrast => contrast(image, 1.0 - 0.8 * s),
        }
    }
}

/// Gaussian noise of standard deviation `sigma` (0–255 units), per channel.
fn noise(image: &mut Image, sigma: f32, seed: u64) {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for (i, p) in image.data.iter_mut().enumerate() {
        if i % 4 == 3 {
            continue;
        }
        // Box–Muller.
        let (a, b): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
        let z = (-2.0 * a.ln()).sqrt() * (2.0 * std::f32::consts::PI * b).cos();
        *p = (*p as f32 + sigma * z).round().clamp(0.0, 255.0) as u8;
    }
}

/// Three box blurs of radius ≈ `sigma` (close to a Gaussian), edges clamped.
fn blur(image: &mut Image, sigma: f32) {
    let radius = sigma.round().max(1.0) as i64;
    let (w, h) = (image.width as i64, image.height as i64);
    let mut plane: Vec<f32> = image.data.iter().map(|&v| v as f32).collect();
    for _ in 0..3 {
        for horizontal in [true, false] {
            let src = plane.clone();
            for y in 0..h {
                for x in 0..w {
                    for c in 0..3 {
                        let mut sum = 0.0;
                        for k in -radius..=radius {
                            let (sx, sy) =
                                if horizontal { ((x + k).clamp(0, w - 1), y) } else { (x, (y + k).clamp(0, h - 1)) };
                            sum += src[((sy * w + sx) * 4 + c) as usize];
                        }
                        plane[((y * w + x) * 4 + c) as usize] = sum / (2 * radius + 1) as f32;
                    }
                }
            }
        }
    }
    for (p, v) in image.data.iter_mut().zip(plane) {
        *p = v.round().clamp(0.0, 255.0) as u8;
    }
}

/// Each `block`×`block` tile takes its mean colour (a crude low-bitrate codec).
fn blocky(image: &mut Image, block: u32) {
    if block <= 1 {
        return;
    }
    let (w, h) = (image.width, image.height);
    for by in (0..h).step_by(block as usize) {
        for bx in (0..w).step_by(block as usize) {
            let (x1, y1) = ((bx + block).min(w), (by + block).min(h));
            let n = (x1 - bx) * (y1 - by);
            let mut sum = [0u32; 3];
            for y in by..y1 {
                for x in bx..x1 {
                    let i = ((y * w + x) * 4) as usize;
                    for (total, &v) in sum.iter_mut().zip(&image.data[i..i + 3]) {
                        *total += v as u32;
                    }
                }
            }
            for y in by..y1 {
                for x in bx..x1 {
                    let i = ((y * w + x) * 4) as usize;
                    for (v, total) in image.data[i..i + 3].iter_mut().zip(sum) {
                        *v = ((total + n / 2) / n) as u8;
                    }
                }
            }
        }
    }
}

/// Pulls every channel towards mid-grey: `128 + (v − 128)·factor`.
fn contrast(image: &mut Image, factor: f32) {
    for (i, p) in image.data.iter_mut().enumerate() {
        if i % 4 != 3 {
            *p = (128.0 + (*p as f32 - 128.0) * factor).round().clamp(0.0, 255.0) as u8;
        }
    }
}
