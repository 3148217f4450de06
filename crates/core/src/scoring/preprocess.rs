//! Image preprocessing for the CLIP towers: RGBA8 in, the preset's resize, centre crop or
//! centred zero pad, normalisation, f32 channel planes out. The resize is Pillow's bicubic
//! (`Image.resize(…, BICUBIC)`, antialiased when shrinking) reproduced to the bit: the same
//! filter weights in f64, the same 22-bit fixed-point taps, the same rounding after each
//! pass. The GPU kernel runs these taps too, so CPU, GPU and Pillow agree exactly.

use std::fmt;

/// OpenAI CLIP's normalisation (CLIP, PickScore, HPS v2).
pub const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// Pillow's fixed-point precision for 8-bit images.
pub const PRECISION_BITS: u32 = 32 - 8 - 2;

/// How a preset brings an image to the model's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Hugging Face `CLIPImageProcessor`: shortest edge to `size` (the long edge truncated
    /// as `int(size·long/short)`), then a centre crop of `crop × crop`.
    ShortestEdgeCrop { size: u32, crop: u32 },
    /// open_clip's `ResizeMaxSize` (HPS v2): longest side to `size` (Python's `round`), centred
    /// zero pad to a square (left/top get `pad // 2`); untouched when the longest side is `size`.
    LongestSidePad { size: u32 },
}

/// A model's preprocessing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    pub resize: Resize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Preset {
    /// `CLIPImageProcessor` with OpenAI statistics (shortest edge `size`, crop `size`).
    pub fn clip(size: u32) -> Self {
        Self { resize: Resize::ShortestEdgeCrop { size, crop: size }, mean: OPENAI_MEAN, std: OPENAI_STD }
    }

    /// open_clip as HPS v2 uses it.
    pub fn hps(size: u32) -> Self {
        Self { resize: Resize::LongestSidePad { size }, mean: OPENAI_MEAN, std: OPENAI_STD }
    }

    /// Sizes and offsets for a `width × height` image.
    pub fn plan(&self, width: u32, height: u32) -> Plan {
        match self.resize {
            Resize::ShortestEdgeCrop { size, crop } => {
                let (short, long) = if width <= height { (width, height) } else { (height, width) };
                let new_long = (size as u64 * long as u64 / short as u64) as u32;
                let (rw, rh) = if width <= height { (size, new_long) } else { (new_long, size) };
                Plan { resized: (rw, rh), out: (crop, crop), offset: (crop_offset(rw, crop), crop_offset(rh, crop)) }
            }
            Resize::LongestSidePad { size } => {
                let scale = size as f64 / width.max(height) as f64;
                if scale == 1.0 {
                    return Plan { resized: (width, height), out: (width, height), offset: (0, 0) };
                }
                let round = |d: u32| round_half_even(d as f64 * scale).max(1.0) as u32;
                let (rw, rh) = (round(width), round(height));
                let (pad_w, pad_h) = (size as i64 - rw as i64, size as i64 - rh as i64);
                Plan { resized: (rw, rh), out: (size, size), offset: (-(pad_w.div_euclid(2)), -(pad_h.div_euclid(2))) }
            }
        }
    }
}

/// Start of a centre crop of `crop` from `size`: `(size − crop) // 2`; negative when the image
/// is smaller and padded (the pad's left/top half is `(crop − size) // 2`).
fn crop_offset(size: u32, crop: u32) -> i64 {
    if size >= crop {
        ((size - crop) / 2) as i64
    } else {
        -(((crop - size) / 2) as i64)
    }
}

/// Python's `round` (ties to even).
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// Where the output comes from: output pixel `(x, y)` is resized pixel
/// `(x + offset.0, y + offset.1)`, or zero (before normalisation) outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub resized: (u32, u32),
    pub out: (u32, u32),
    pub offset: (i64, i64),
}

/// Pillow's resampling taps along one axis: for output index `i`, input indices
/// `bounds[i][0] .. bounds[i][0] + bounds[i][1]` with fixed-point weights
/// `weights[i·ksize ..]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisTaps {
    pub ksize: usize,
    pub bounds: Vec<[u32; 2]>,
    pub weights: Vec<i32>,
}

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` with the bicubic filter, then `normalize_coeffs_8bpc`.
pub fn bicubic_taps(in_size: u32, out_size: u32) -> AxisTaps {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size as usize);
    let mut weights = vec![0i32; out_size as usize * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size as usize {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
        let mut ww = 0.0;
        for (x, slot) in k[..xmax.max(0) as usize].iter_mut().enumerate() {
            *slot = bicubic((x as f64 + xmin as f64 - center + 0.5) * ss);
            ww += *slot;
        }
        let row = &mut weights[xx * ksize..(xx + 1) * ksize];
        for (out, &w) in row.iter_mut().zip(&k[..xmax.max(0) as usize]) {
            let w = if ww != 0.0 { w / ww } else { w };
            let fixed = w * (1u64 << PRECISION_BITS) as f64;
            *out = if w < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
        }
        bounds.push([xmin as u32, xmax.max(0) as u32]);
    }
    AxisTaps { ksize, bounds, weights }
}

/// Pillow's `clip8`: a fixed-point sum back to a byte.
#[inline]
pub fn clip8(sum: i32) -> u8 {
    if sum >= 1 << PRECISION_BITS << 8 {
        255
    } else if sum <= 0 {
        0
    } else {
        (sum >> PRECISION_BITS) as u8
    }
}

/// A decoded image that does not fit its declared size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSizeError {
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
}

impl fmt::Display for ImageSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.width == 0 || self.height == 0 {
            write!(f, "image has no pixels ({}×{})", self.width, self.height)
        } else {
            write!(
                f,
                "a {}×{} RGBA image needs {} bytes, got {}",
                self.width,
                self.height,
                self.width as u64 * self.height as u64 * 4,
                self.bytes
            )
        }
    }
}

impl std::error::Error for ImageSizeError {}

/// Checks that `rgba` holds a `width × height` RGBA8 image.
pub fn check_rgba(rgba: &[u8], width: u32, height: u32) -> Result<(), ImageSizeError> {
    if width == 0 || height == 0 || rgba.len() as u64 != width as u64 * height as u64 * 4 {
        return Err(ImageSizeError { width, height, bytes: rgba.len() });
    }
    Ok(())
}

/// Pillow's `convert("RGB").resize((new_w, new_h), BICUBIC)`: RGB bytes, alpha dropped.
pub fn resize_rgb(rgba: &[u8], width: u32, height: u32, new_w: u32, new_h: u32) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let (nw, nh) = (new_w as usize, new_h as usize);
    let horizontal = bicubic_taps(width, new_w);
    let vertical = bicubic_taps(height, new_h);
    let half = 1i32 << (PRECISION_BITS - 1);
    // Horizontal pass (every row; Pillow skips rows no output uses, which changes nothing).
    let mut temp = vec![0u8; h * nw * 3];
    for y in 0..h {
        for xx in 0..nw {
            let [x0, count] = horizontal.bounds[xx];
            let k = &horizontal.weights[xx * horizontal.ksize..];
            for c in 0..3 {
                let mut ss = half;
                for x in 0..count as usize {
                    let v = rgba[(y * w + x0 as usize + x) * 4 + c] as i32;
                    ss = ss.wrapping_add(v.wrapping_mul(k[x]));
                }
                temp[(y * nw + xx) * 3 + c] = clip8(ss);
            }
        }
    }
    let mut out = vec![0u8; nh * nw * 3];
    for yy in 0..nh {
        let [y0, count] = vertical.bounds[yy];
        let k = &vertical.weights[yy * vertical.ksize..];
        for x in 0..nw {
            for c in 0..3 {
                let mut ss = half;
                for y in 0..count as usize {
                    let v = temp[((y0 as usize + y) * nw + x) * 3 + c] as i32;
                    ss = ss.wrapping_add(v.wrapping_mul(k[y]));
                }
                out[(yy * nw + x) * 3 + c] = clip8(ss);
            }
        }
    }
    out
}

/// The normalised value of a byte: `(v/255 − mean)/std`, as the processors compute it.
#[inline]
pub fn normalize_byte(v: u8, mean: f32, std: f32) -> f32 {
    (v as f32 * (1.0 / 255.0) - mean) / std
}

/// A preprocessed image: `3 × height × width` f32, channel planes (one NCHW item).
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

/// Preprocesses one RGBA8 image for `preset`.
pub fn preprocess(rgba: &[u8], width: u32, height: u32, preset: &Preset) -> Result<Pixels, ImageSizeError> {
    check_rgba(rgba, width, height)?;
    let plan = preset.plan(width, height);
    let (rw, rh) = plan.resized;
    let resized = resize_rgb(rgba, width, height, rw, rh);
    let (ow, oh) = plan.out;
    let plane = (ow * oh) as usize;
    let mut data = vec![0f32; 3 * plane];
    for y in 0..oh as i64 {
        for x in 0..ow as i64 {
            let (sx, sy) = (x + plan.offset.0, y + plan.offset.1);
            let inside = (0..rw as i64).contains(&sx) && (0..rh as i64).contains(&sy);
            for c in 0..3 {
                let v = if inside { resized[((sy as usize) * rw as usize + sx as usize) * 3 + c] } else { 0 };
                data[c * plane + (y * ow as i64 + x) as usize] = normalize_byte(v, preset.mean[c], preset.std[c]);
            }
        }
    }
    Ok(Pixels { width: ow, height: oh, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_processors() {
        let clip = Preset::clip(224);
        assert_eq!(clip.plan(640, 480), Plan { resized: (298, 224), out: (224, 224), offset: (37, 0) });
        let hps = Preset::hps(224);
        assert_eq!(hps.plan(448, 300), Plan { resized: (224, 150), out: (224, 224), offset: (0, -37) });
        assert_eq!(hps.plan(224, 100), Plan { resized: (224, 100), out: (224, 100), offset: (0, 0) });
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
    }

    #[test]
    fn same_size_resize_is_the_identity() {
        let rgba: Vec<u8> = (0..5 * 3 * 4).map(|i| (i * 37 % 256) as u8).collect();
        let rgb = resize_rgb(&rgba, 5, 3, 5, 3);
        let expected: Vec<u8> = rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        assert_eq!(rgb, expected);
        assert!(preprocess(&rgba, 5, 4, &Preset::clip(4)).is_err());
    }
}
