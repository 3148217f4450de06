//! `prefscope.Scorer`: a CLIP-family model loaded once, embedding and scoring as
//! `prefscope embed` and `prefscope score` do.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use arrow_array::ffi_stream::RecordBatchStreamReader;
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use prefscope_clip::pipeline::{distinct_images, embed_images_batched, resolve, score_manifest};
use prefscope_clip::scorer::{common_text_direction, rows_table, Reference, Scorer as Preset};
use prefscope_clip::{Backend, DtypeChoice, Encoder, ImageLimits, ModelFiles, Rgba};
use prefscope_core::io::read::read_manifest;
use prefscope_core::scoring::embedding::{normalize, Embeddings};
use prefscope_gpu::block_on;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::error;
use crate::table::{self, ImageSource};

/// An image handed over from Python: a path, an encoded file, or decoded RGBA pixels.
enum Picture {
    Path(PathBuf),
    Encoded(String, Vec<u8>),
    Pixels(String, u32, u32, Vec<u8>),
}

impl Picture {
    fn extract(obj: &Bound<'_, PyAny>, index: usize) -> PyResult<Picture> {
        let name = format!("image {}", index + 1);
        if let Ok(bytes) = obj.cast::<PyBytes>() {
            return Ok(Picture::Encoded(name, bytes.as_bytes().to_vec()));
        }
        if let Ok(tuple) = obj.cast::<PyTuple>() {
            let (width, height, data): (u32, u32, Vec<u8>) =
                tuple.extract().map_err(|_| error(format!("{name}: a tuple must be (width, height, RGBA bytes)")))?;
            return Ok(Picture::Pixels(name, width, height, data));
        }
        if let Ok(path) = obj.extract::<PathBuf>() {
            return Ok(Picture::Path(path));
        }
        Err(error(format!(
            "{name}: expected a path, the bytes of an image file, a PIL image or (width, height, RGBA bytes), got {}",
            obj.get_type().name()?
        )))
    }

    /// Decodes the image (taking over decoded pixels as they are).
    fn decode(self, limits: &ImageLimits) -> Result<Rgba, prefscope_clip::ClipError> {
        match self {
            Picture::Path(path) => Rgba::open(&path, limits),
            Picture::Encoded(name, bytes) => Rgba::decode_limited(&name, &bytes, limits),
            Picture::Pixels(name, width, height, data) => {
                limits.check(&name, width, height)?;
                Rgba::from_raw(&name, width, height, data)
            }
        }
    }
}

/// The largest `batch`: far past what fits a GPU binding (the towers split it anyway), small
/// enough that no size computed from it overflows.
const MAX_BATCH: i64 = 1 << 16;

/// A common text direction's identity: the preset's name and the reference prompts (`None`:
/// the bundled set).
type DirectionKey = (String, Option<Vec<String>>);

/// A CLIP-family model (transformers CLIPModel or open_clip safetensors, with tokenizer.json)
/// on a GPU or prefscope's CPU kernels.
#[pyclass(module = "prefscope._prefscope", frozen)]
pub struct Scorer {
    encoder: Encoder,
    limits: ImageLimits,
    /// Which device computes, in words.
    #[pyo3(get)]
    device: String,
    /// The towers' compute type ("float32", "float16").
    #[pyo3(get)]
    dtype: String,
    /// Common text directions computed so far, by preset and reference prompts: every call of
    /// `score` (one per group under Ray's `map_groups`) would otherwise run the text tower
    /// over the reference set again.
    directions: Mutex<HashMap<DirectionKey, Vec<f32>>>,
}

fn l2_rows(vectors: Vec<Vec<f32>>, dim: usize) -> Vec<f32> {
    let mut data = Vec::with_capacity(vectors.len() * dim);
    for v in vectors {
        data.extend(normalize(&v));
    }
    data
}

/// A numpy array of `rows × dim` over `data`'s buffer.
fn matrix<'py>(py: Python<'py>, data: Vec<f32>, dim: usize) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let rows = data.len().checked_div(dim).unwrap_or(0);
    PyArray1::from_vec(py, data).reshape([rows, dim])
}

#[pymethods]
impl Scorer {
    #[new]
    #[pyo3(signature = (model_dir, device="auto", batch=16, max_image_pixels=prefscope_clip::image::DEFAULT_MAX_IMAGE_PIXELS as i64, dtype="auto"))]
    fn new(
        py: Python<'_>,
        model_dir: PathBuf,
        device: &str,
        batch: i64,
        max_image_pixels: i64,
        dtype: &str,
    ) -> PyResult<Self> {
        if !(1..=MAX_BATCH).contains(&batch) {
            return Err(error(format!("batch must be a whole number from 1 to {MAX_BATCH}, got {batch}")));
        }
        if max_image_pixels < 1 {
            return Err(error(format!(
                "max_image_pixels must be a whole number of at least 1, got {max_image_pixels}"
            )));
        }
        let choice = DtypeChoice::parse(dtype).map_err(error)?;
        let device = device.to_string();
        py.detach(move || {
            let files = ModelFiles::from_dir(&model_dir).map_err(|e| e.to_string())?;
            let (gpu, said) = crate::device::open(&device)?;
            let backend = gpu.map(Backend::Gpu).unwrap_or(Backend::Cpu);
            let mut encoder = Encoder::load_with(&files, backend, choice).map_err(|e| e.to_string())?;
            encoder.batch = batch as usize;
            let dtype = encoder.dtype().name().to_string();
            Ok(Scorer {
                encoder,
                limits: ImageLimits { max_pixels: max_image_pixels as u64 },
                // Which dtype runs where: `cpu (q8)`, `gpu: <adapter> (f16)`.
                device: format!("{said} ({dtype})"),
                dtype,
                directions: Mutex::new(HashMap::new()),
            })
        })
        .map_err(|e: String| error(e))
    }

    /// Embedding width.
    #[getter]
    fn dim(&self) -> usize {
        self.encoder.config().projection
    }

    /// L2-normalised text embeddings, one row per text (a text past the context is embedded in
    /// LongAlign's segments and their mean normalised, as `prefscope embed` does).
    fn embed_texts<'py>(&self, py: Python<'py>, texts: Vec<String>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let dim = self.dim();
        let data = py
            .detach(|| {
                let mut vectors = Vec::with_capacity(texts.len());
                for chunk in texts.chunks(self.encoder.batch * 4) {
                    vectors.extend(block_on(self.encoder.embed_texts(chunk))?.into_iter().map(|t| t.vector));
                }
                Ok(l2_rows(vectors, dim))
            })
            .map_err(|e: prefscope_clip::ClipError| error(e))?;
        matrix(py, data, dim)
    }

    /// L2-normalised image embeddings, one row per image: paths, encoded files (bytes) or
    /// `(width, height, RGBA bytes)`; `preset` preprocesses as that scorer does (the
    /// checkpoint's own preprocessing when absent).
    #[pyo3(signature = (images, preset=None))]
    fn embed_images<'py>(
        &self,
        py: Python<'py>,
        images: Vec<Bound<'py, PyAny>>,
        preset: Option<&str>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let mut pictures =
            images.iter().enumerate().map(|(i, o)| Picture::extract(o, i).map(Some)).collect::<PyResult<Vec<_>>>()?;
        let preset = match preset {
            Some(name) => Preset::parse(name).map_err(error)?.preset(self.encoder.preset()),
            None => self.encoder.preset(),
        };
        let embedded = py
            .detach(|| {
                block_on(embed_images_batched(
                    &self.encoder,
                    pictures.len(),
                    &preset,
                    // Each image is loaded once, in order.
                    &mut |i| match pictures[i].take() {
                        Some(picture) => picture.decode(&self.limits),
                        None => Err(prefscope_clip::ClipError::Input(format!("image {} was loaded twice", i + 1))),
                    },
                    &mut |_| {},
                ))
            })
            .map_err(error)?;
        let dim = embedded.dim;
        matrix(py, embedded.data, dim)
    }

    /// `prefscope score`'s rows as a pyarrow RecordBatch: `source` is a manifest (CSV or JSON
    /// Lines; image paths relative to its folder) or an Arrow table/stream with `prompt` and
    /// `image` (paths relative to `root`, or the images' bytes).
    #[pyo3(signature = (source, preset="clip", reweight=prefscope_core::scoring::longalign::DEFAULT_REWEIGHT, reference_prompts=None, root=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        source: &Bound<'py, PyAny>,
        preset: &str,
        reweight: f32,
        reference_prompts: Option<Vec<String>>,
        root: Option<PathBuf>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scorer = Preset::parse(preset).map_err(error)?;
        let reference = match reference_prompts {
            Some(p) if p.iter().all(|p| p.trim().is_empty()) => return Err(error("reference_prompts: no prompts")),
            Some(p) => Reference::Prompts(p.into_iter().filter(|p| !p.trim().is_empty()).collect()),
            None => Reference::Bundled,
        };
        let manifest = if let Ok(path) = source.extract::<PathBuf>() {
            Err(path)
        } else if source.hasattr("__arrow_c_stream__")? {
            Ok(RecordBatchStreamReader::from_pyarrow_bound(source)
                .map_err(|e| error(format!("cannot read the Arrow stream: {e}")))?)
        } else {
            return Err(error(format!(
                "source must be a manifest path (CSV, JSON Lines) or an Arrow table, got {}",
                source.get_type().name()?
            )));
        };
        let batch = py
            .detach(move || {
                let table = match manifest {
                    Err(path) => {
                        let name = path.display().to_string();
                        let bytes = std::fs::read(&path).map_err(|e| format!("{name}: {e}"))?;
                        let rows = read_manifest(&name, &bytes).map_err(|e| e.to_string())?;
                        let images = rows.iter().map(|r| ImageSource::Path(resolve(&path, &r.image))).collect();
                        table::ManifestTable { rows, images }
                    }
                    Ok(reader) => table::read("table", reader, root.as_deref())?,
                };
                self.score_table(table, scorer, reweight, &reference).map_err(|e| e.to_string())
            })
            .map_err(error)?;
        batch.to_pyarrow(py)
    }
}

impl Scorer {
    fn score_table(
        &self,
        table: table::ManifestTable,
        scorer: Preset,
        reweight: f32,
        reference: &Reference,
    ) -> Result<arrow_array::RecordBatch, Box<dyn std::error::Error + Send + Sync>> {
        // Each distinct image file is decoded and embedded once, as the command does.
        let (image_of_row, first_row) = distinct_images(table.images.iter().map(|source| match source {
            ImageSource::Path(p) => Some(p),
            ImageSource::Bytes(_) => None,
        }));
        let preset = scorer.preset(self.encoder.preset());
        let images: Embeddings = block_on(embed_images_batched(
            &self.encoder,
            first_row.len(),
            &preset,
            &mut |i| match &table.images[first_row[i]] {
                ImageSource::Path(p) => Rgba::open(p, &self.limits),
                ImageSource::Bytes(b) => Rgba::decode_limited(&table.rows[first_row[i]].image, b, &self.limits),
            },
            &mut |_| {},
        ))?;
        let key = (
            scorer.name().to_string(),
            match reference {
                Reference::Bundled => None,
                Reference::Prompts(p) => Some(p.clone()),
            },
        );
        let cached = self.directions.lock().ok().and_then(|d| d.get(&key).cloned());
        let u = match cached {
            Some(u) => u,
            None => {
                let u = block_on(common_text_direction(&self.encoder, scorer, reference))?;
                if let Ok(mut d) = self.directions.lock() {
                    d.insert(key, u.clone());
                }
                u
            }
        };
        let scored = block_on(score_manifest(&self.encoder, &table.rows, &image_of_row, images, scorer, reweight, u))?;
        Ok(rows_table(&scored).record_batch()?)
    }
}
