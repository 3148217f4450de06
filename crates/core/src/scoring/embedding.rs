//! Row-major embedding matrices (`n × dim`, f32 as the towers produce them). Dot products
//! accumulate in f64 so the CPU path is the precise twin the GPU kernels are checked against.

/// `n` embeddings of width `dim`, stored row after row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embeddings {
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Embeddings {
    /// Wraps rows; `None` if `data` is not a whole number of rows or `dim` is 0.
    pub fn new(dim: usize, data: Vec<f32>) -> Option<Self> {
        (dim > 0 && data.len().is_multiple_of(dim)).then_some(Self { dim, data })
    }

    /// Builds from row vectors, which must all have the same width.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R]) -> Option<Self> {
        let dim = rows.first()?.as_ref().len();
        if rows.iter().any(|r| r.as_ref().len() != dim) {
            return None;
        }
        Self::new(dim, rows.iter().flat_map(|r| r.as_ref().iter().copied()).collect())
    }

    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Each row divided by its L2 norm (a zero row stays zero, as `x / max(‖x‖, ε)` would).
    pub fn normalized(&self) -> Self {
        let mut data = self.data.clone();
        for row in data.chunks_mut(self.dim) {
            let norm = dot(row, row).sqrt();
            if norm > 0.0 {
                for x in row.iter_mut() {
                    *x = (*x as f64 / norm) as f32;
                }
            }
        }
        Self { dim: self.dim, data }
    }
}

/// f64-accumulated dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// L2-normalises one vector.
pub fn normalize(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    if norm == 0.0 {
        return v.to_vec();
    }
    v.iter().map(|x| (*x as f64 / norm) as f32).collect()
}
