//! Decoding images to RGBA8 as users' pipelines see them: EXIF orientation applied (as
//! transformers' `load_image` does with `ImageOps.exif_transpose`), grey and palette expanded,
//! 16-bit scaled to 8 bits. Alpha is kept in the buffer and ignored by preprocessing, which is
//! PIL's `convert("RGB")` (no compositing).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::error::ClipError;

/// Pillow's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`, 1 GiB of 24-bit pixels / 3):
/// a file that declares more pixels is refused before anything is allocated.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// What one image may cost to decode. The byte limit follows from the pixel limit: the file
/// itself and every allocation of the decoder stay under 8 bytes per allowed pixel (16-bit
/// RGBA), so a small file cannot make the decoder allocate more than a large image would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_pixels: u64,
}

/// "89.5 megapixels", or "400 pixels" for small counts.
fn count(pixels: u64) -> String {
    if pixels >= 100_000 {
        format!("{:.1} megapixels", pixels as f64 / 1e6)
    } else {
        format!("{pixels} pixels")
    }
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits { max_pixels: DEFAULT_MAX_IMAGE_PIXELS }
    }
}

impl ImageLimits {
    /// Bytes a file or a decoder allocation may take.
    pub fn max_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(8)
    }

    /// Refuses `width × height` past the pixel limit, naming the image.
    pub fn check(&self, name: &str, width: u32, height: u32) -> Result<(), ClipError> {
        let pixels = width as u64 * height as u64;
        if pixels > self.max_pixels {
            return Err(ClipError::Image {
                name: name.to_string(),
                detail: format!(
                    "is {width}×{height} ({}), past the limit of {}; raise it with --max-image-pixels \
                     (maxImagePixels in the JavaScript API, max_image_pixels in Python) to decode it",
                    count(pixels),
                    count(self.max_pixels)
                ),
            });
        }
        Ok(())
    }

    fn check_file(&self, name: &str, len: u64) -> Result<(), ClipError> {
        if len > self.max_bytes() {
            return Err(ClipError::Image {
                name: name.to_string(),
                detail: format!(
                    "is a {len}-byte file, past the {}-byte limit that a limit of {} pixels sets (--max-image-pixels, \
                     maxImagePixels in the JavaScript API, max_image_pixels in Python)",
                    self.max_bytes(),
                    self.max_pixels
                ),
            });
        }
        Ok(())
    }
}

/// An RGBA8 image with the name it is reported under.
#[derive(Clone, Debug)]
pub struct Rgba {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Rgba {
    /// Decodes PNG, JPEG, WebP, GIF or BMP bytes within the default [`ImageLimits`]; `name`
    /// appears in errors.
    pub fn decode(name: &str, bytes: &[u8]) -> Result<Self, ClipError> {
        Self::decode_limited(name, bytes, &ImageLimits::default())
    }

    /// [`Rgba::decode`] within `limits`: the size the header declares is checked before the
    /// pixels are decoded, and the decoder's allocations are capped.
    pub fn decode_limited(name: &str, bytes: &[u8], limits: &ImageLimits) -> Result<Self, ClipError> {
        let bad = |detail: String| ClipError::Image { name: name.to_string(), detail };
        limits.check_file(name, bytes.len() as u64)?;
        let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| bad(e.to_string()))?;
        if reader.format().is_none() {
            return Err(bad("not a PNG, JPEG, WebP, GIF or BMP image".into()));
        }
        // The size the header declares, read by imagesize without a decoder (the image crate's
        // own limits refuse a bomb too, but without saying what it is, and on wasm32 they fail
        // any image past 2 GiB of pixels before its size can be asked).
        if let Ok(size) = imagesize::blob_size(bytes) {
            let dim = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
            limits.check(name, dim(size.width), dim(size.height))?;
        }
        let mut caps = Limits::default();
        caps.max_alloc = Some(limits.max_bytes());
        reader.limits(caps);
        let mut decoder = reader.into_decoder().map_err(|e| bad(format!("cannot decode: {e}")))?;
        let (width, height) = decoder.dimensions();
        limits.check(name, width, height)?;
        let orientation = decoder.orientation().map_err(|e| bad(format!("cannot read its orientation: {e}")))?;
        let mut image = DynamicImage::from_decoder(decoder).map_err(|e| bad(format!("cannot decode: {e}")))?;
        image.apply_orientation(orientation);
        let rgba = image.to_rgba8();
        let (width, height) = rgba.dimensions();
        if width == 0 || height == 0 {
            return Err(bad("has no pixels".into()));
        }
        Ok(Rgba { name: name.to_string(), width, height, data: rgba.into_raw() })
    }

    /// Wraps pixels decoded elsewhere (the browser's `createImageBitmap`).
    pub fn from_raw(name: &str, width: u32, height: u32, data: Vec<u8>) -> Result<Self, ClipError> {
        prefscope_core::scoring::preprocess::check_rgba(&data, width, height)
            .map_err(|e| ClipError::Image { name: name.to_string(), detail: e.to_string() })?;
        Ok(Rgba { name: name.to_string(), width, height, data })
    }

    /// Reads and decodes a file within `limits` (its size is checked before it is read).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path, limits: &ImageLimits) -> Result<Self, ClipError> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| ClipError::Image { name: name.clone(), detail: e.to_string() };
        limits.check_file(&name, std::fs::metadata(path).map_err(io)?.len())?;
        let bytes = std::fs::read(path).map_err(io)?;
        Self::decode_limited(&name, &bytes, limits)
    }
}
