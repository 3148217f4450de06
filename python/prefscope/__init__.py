"""prefscope from Python: TRL's DPO-family metrics from exported log-probabilities, and
CLIP-style scoring of images against prompts, computed by prefscope's Rust crates (the same
code as the ``prefscope`` command and the web page, so the numbers are the same).

Tables go in and come out as Arrow without copies where the layout allows; the GIL is
released while Rust works; bad input raises :class:`PrefscopeError` with the command's message
(the file, row, column or parameter at fault).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Optional, Sequence, Union

import pyarrow as pa

from . import _prefscope
from ._prefscope import PrefscopeError, __version__

__all__ = ["dpo", "compare", "Scorer", "PrefscopeError", "__version__", "as_arrow"]

PathLike = Union[str, "os.PathLike[str]"]


def as_arrow(data: Any) -> Any:
    """An object the Rust side reads as an Arrow stream: pyarrow tables, record batches and
    readers as they are (anything with ``__arrow_c_stream__``); a pandas DataFrame or a Hugging
    Face ``datasets.Dataset`` converted to a pyarrow Table."""
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "__arrow_c_stream__"):
        return data
    table = getattr(data, "data", None)  # datasets.Dataset keeps a pyarrow-backed table
    if table is not None and hasattr(table, "table") and isinstance(table.table, pa.Table):
        return data.with_format("arrow")[:] if getattr(data, "_indices", None) is not None else table.table
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return pa.Table.from_pandas(data, preserve_index=False)
    except ImportError:
        pass
    raise PrefscopeError(
        f"expected a path or an Arrow table (pyarrow, pandas, datasets), got {type(data).__name__}"
    )


def _source(source: Any) -> Any:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return as_arrow(source)


def dpo(
    source: Any,
    loss: Union[str, Sequence[str]] = "sigmoid",
    beta: Optional[float] = None,
    label_smoothing: float = 0.0,
    *,
    weights: Optional[Sequence[float]] = None,
    f_divergence: str = "reverse_kl",
    f_alpha: float = 0.5,
    sft_weight: float = 0.05,
    bins: int = 10,
    by: Optional[str] = None,
    desirable_weight: Optional[float] = None,
    undesirable_weight: Optional[float] = None,
    device: str = "auto",
) -> dict:
    """``prefscope dpo``'s report on a JSON Lines, CSV or Parquet file, or on an Arrow table or
    stream with the same columns (docs/DESIGN.md "DPO log-probabilities", or "Diffusion-DPO rows").

    Returns ``{"metrics": {...}, "pairs": pyarrow.Table, "calibration": {"bins": [...]}}``: the
    metrics under TRL's names (``rewards/chosen``, ``rewards/margins``, ``logps/chosen``,
    ``loss``, ``calibration/ece`` …) and one row per pair (id, rewards, margin, loss …), equal to
    the command's. ``loss`` takes TRL's loss types, several at once as a list or a
    comma-separated string with ``weights``; ``beta`` defaults to each objective's default (0.1;
    5000 for Diffusion-DPO). ``bins`` sets the calibration's bins; ``by="subset"`` (or
    ``"category"``) adds ``subsets`` and ``subsets_mean``; ``desirable_weight`` and
    ``undesirable_weight`` are KTO's (``KTOConfig``'s, 1 each). ``device`` is ``auto`` (a hardware GPU
    when present), ``gpu`` or ``cpu``.

    A list of sources is the evaluations of one run (``eval-{step}.parquet`` files from
    :class:`prefscope.trl.ExportCallback`): the report adds ``steps``, ``flips`` and ``missing``,
    and each pair row its trajectory (``steps``, ``margins``, ``chosen_rewards``,
    ``rejected_rewards``), as ``prefscope dpo --input A --input B …`` does.
    """
    if not isinstance(loss, str):
        loss = ",".join(loss)
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    metrics, rest, batch = _prefscope.dpo(
        [_source(s) for s in sources],
        loss=loss,
        beta=beta,
        label_smoothing=label_smoothing,
        weights=list(weights) if weights is not None else None,
        f_divergence=f_divergence,
        f_alpha=f_alpha,
        sft_weight=sft_weight,
        bins=bins,
        by=by,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        device=device,
    )
    out = {"metrics": metrics, "pairs": pa.Table.from_batches([batch])}
    out.update(json.loads(rest))
    return out


def compare(
    source: Any,
    objectives: Sequence[str],
    beta: float = 0.1,
    label_smoothing: float = 0.0,
) -> dict:
    """Every named objective's batch loss on the same DPO pairs, from one fused pass (the page's
    "compare objectives" table): ``{"losses": {objective: loss}, "metrics": {...}}``, each loss
    equal to ``dpo(source, loss=objective, ...)["metrics"]["loss"]``. Objectives: TRL's loss
    types, ``cdpo``, ``simpo``, ``cpo``, ``orpo``, ``kto``, ``bco``."""
    if isinstance(objectives, str):
        objectives = [o for o in objectives.split(",") if o.strip()]
    losses, metrics = _prefscope.compare(_source(source), list(objectives), beta=beta, label_smoothing=label_smoothing)
    return {"losses": losses, "metrics": metrics}


def _picture(image: Any) -> Any:
    """Paths and bytes as they are; PIL images as (width, height, RGBA bytes)."""
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image.Image
        rgba = image.convert("RGBA")
        return (rgba.size[0], rgba.size[1], rgba.tobytes())
    return image


class Scorer:
    """A CLIP-family model: a directory with config.json + model.safetensors (transformers
    CLIPModel) or open_clip_config.json + open_clip_model.safetensors, and tokenizer.json.

    ``device``: ``auto`` (a hardware GPU when present, else prefscope's CPU kernels), ``gpu``
    or ``cpu``. ``batch``: texts or images per forward pass. ``max_image_pixels``: the largest
    image decoded (Pillow's decompression-bomb limit by default). ``dtype``: what the towers
    keep their matrices in: ``f32`` (exact parity with the reference implementations),
    ``f16``, ``q8`` (int8 weights and activations on the CPU; f16 on a GPU) or ``auto`` (a
    checkpoint written by ``prefscope quantize`` in its stored dtype, other half-precision
    checkpoints in f16 on a GPU, f32 elsewhere); ``fp32``/``fp16`` also work. ``precision`` is
    its former name.
    """

    def __init__(
        self,
        model_dir: PathLike,
        device: str = "auto",
        *,
        batch: int = 16,
        max_image_pixels: int = 89_478_485,
        dtype: str = "auto",
        precision: str | None = None,
    ) -> None:
        if precision is not None:
            if dtype != "auto" and dtype != precision:
                raise ValueError(f"dtype={dtype!r} and precision={precision!r} disagree (precision is dtype's former name)")
            dtype = precision
        self._inner = _prefscope.Scorer(
            os.fspath(model_dir), device, batch=batch, max_image_pixels=max_image_pixels, dtype=dtype
        )

    @property
    def device(self) -> str:
        """Where the towers run and in which dtype, in words (``cpu (q8)``, ``gpu: <adapter> (f16)``)."""
        return self._inner.device

    @property
    def dtype(self) -> str:
        """The type the towers keep their matrices in: ``f32``, ``f16`` or ``q8``."""
        return self._inner.dtype

    @property
    def dim(self) -> int:
        """Width of the embeddings."""
        return self._inner.dim

    def embed_texts(self, texts: Iterable[str]):
        """L2-normalised text embeddings, a float32 numpy array of shape (len(texts), dim)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self._inner.embed_texts(texts)

    def embed_images(self, images: Iterable[Any], preset: Optional[str] = None):
        """L2-normalised image embeddings, a float32 array of shape (len(images), dim), from
        paths, the bytes of image files, or PIL images; ``preset`` preprocesses as that scorer
        does (``clip``, ``pickscore``, ``hps`` …; the checkpoint's own when absent)."""
        return self._inner.embed_images([_picture(i) for i in images], preset=preset)

    def score(
        self,
        source: Any,
        preset: str = "clip",
        reweight: float = 0.3,
        *,
        reference_prompts: Optional[Sequence[str]] = None,
        root: Optional[PathLike] = None,
    ) -> pa.Table:
        """``prefscope score``'s rows as a pyarrow Table (id, group, prompt, image, score,
        relevant, irrelevant, reweighted, probability, rank).

        ``source`` is a manifest file (CSV or JSON Lines, image paths relative to it) or a
        table with ``prompt`` and ``image`` (and optional ``group``, ``id``, ``image_name``):
        ``image`` holds paths (relative to ``root``), the images' bytes (Pick-a-Pic's
        ``jpg_0``), or Hugging Face's Image feature."""
        if isinstance(source, (str, os.PathLike)):
            source = os.fspath(source)
        else:
            source = as_arrow(source)
        batch = self._inner.score(
            source,
            preset=preset,
            reweight=reweight,
            reference_prompts=list(reference_prompts) if reference_prompts is not None else None,
            root=os.fspath(root) if root is not None else None,
        )
        return pa.Table.from_batches([batch])
