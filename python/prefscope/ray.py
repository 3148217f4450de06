"""prefscope past one machine, as Ray Data stages.

Each helper adds ``map_batches`` (or ``map_groups``) stages to a ``ray.data.Dataset`` and runs
prefscope's Rust code on every block, on whichever node holds it; actors load the model once.
The same code runs on a laptop (``ray.init()``) and on a cluster (``ray.init(address="auto")``
on a node of it, or a Ray Job): only where the data lives changes, e.g.
``ray.data.read_parquet("s3://bucket/pick-a-pic/")``.

- :func:`dpo_metrics`: TRL's DPO metrics over every shard, combined from per-block sums into
  exactly the single-machine report (prefscope-core's ``shards``).
- :func:`dpo_pairs`: the per-pair rows (id, rewards, margin, loss) as a Dataset.
- :func:`score`: ``prefscope score``'s rows for a manifest-like Dataset (``prompt``, ``image``
  as paths or bytes, ``id``, optional ``group``) or Pick-a-Pic's layout (``caption``, ``jpg_0``,
  ``jpg_1``: each pair is a group of two rows, so ``probability`` is the scorer's preference).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from . import PrefscopeError, _prefscope, dpo as _dpo, Scorer

__all__ = ["dpo_metrics", "dpo_pairs", "score", "pickapic_rows"]


def _options(loss, beta, label_smoothing, weights, f_divergence, f_alpha) -> dict:
    return {
        "loss": loss if isinstance(loss, str) else ",".join(loss),
        "beta": beta,
        "label_smoothing": label_smoothing,
        "weights": list(weights) if weights is not None else None,
        "f_divergence": f_divergence,
        "f_alpha": f_alpha,
    }


class _DpoShard:
    """One block's part of the report: a one-row table (pairs, sums as JSON, margins, length
    differences, calibration bins' sums)."""

    def __init__(self, options: dict) -> None:
        self.options = options

    def __call__(self, batch: pa.Table) -> pa.Table:
        part = _prefscope.dpo_shard(batch, **self.options)
        difference = part["length_difference"]
        return pa.table(
            {
                "pairs": pa.array([part["pairs"]], pa.int64()),
                "sums": pa.array([json.dumps(part["sums"])], pa.string()),
                "margin": pa.array([part["margin"]], pa.list_(pa.float64())),
                "length_difference": pa.array(
                    [difference if difference is not None else None], pa.list_(pa.float64())
                ),
                "calibration": pa.array([part["calibration"]], pa.list_(pa.float64())),
            }
        )


def dpo_metrics(
    ds: Any,
    loss: Any = "sigmoid",
    beta: Optional[float] = None,
    label_smoothing: float = 0.0,
    *,
    weights: Optional[Sequence[float]] = None,
    f_divergence: str = "reverse_kl",
    f_alpha: float = 0.5,
    concurrency: int = 2,
    batch_size: Optional[int] = None,
    num_cpus: float = 1.0,
) -> dict:
    """TRL's DPO metrics (``prefscope dpo``'s) over a Dataset of DPO log-probability rows.

    Every block is reported on by an actor (``concurrency`` of them, ``num_cpus`` each: leave
    CPUs for the read tasks on a small cluster, or the pool starves them); the blocks' sums are
    combined on the driver into the whole set's metrics (equal to the single-machine report up
    to floating-point summation order, about 1e-15 relative). Objectives whose per-pair terms
    depend on the whole batch (``aot``, ``sft``, ``simpo``/``cpo``/``orpo``, ``kto``/``bco``) and
    Diffusion-DPO rows are refused with the reason."""
    options = _options(loss, beta, label_smoothing, weights, f_divergence, f_alpha)
    parts = ds.map_batches(
        _DpoShard,
        fn_constructor_kwargs={"options": options},
        batch_format="pyarrow",
        batch_size=batch_size,
        concurrency=concurrency,
        num_cpus=num_cpus,
        zero_copy_batch=True,
    ).take_all()
    import numpy as np

    shards = [
        {
            "pairs": int(p["pairs"]),
            "sums": json.loads(p["sums"]),
            "margin": np.asarray(p["margin"], dtype=np.float64),
            "length_difference": None
            if p["length_difference"] is None
            else np.asarray(p["length_difference"], dtype=np.float64),
            "calibration": np.asarray(p["calibration"], dtype=np.float64),
        }
        for p in parts
    ]
    return _prefscope.combine_shards(shards)


def _require_ids(batch: pa.Table, what: str) -> None:
    """Blocks of a distributed dataset do not know their global row numbers, which stand in for
    missing ids on one machine: here every row must carry its own."""
    if "id" not in batch.column_names or batch.column("id").null_count > 0:
        raise PrefscopeError(
            f"{what}: give every row an `id` (blocks of a distributed dataset do not know their row numbers)"
        )


class _DpoPairs:
    def __init__(self, options: dict) -> None:
        self.options = dict(options)

    def __call__(self, batch: pa.Table) -> pa.Table:
        _require_ids(batch, "dpo_pairs")
        return _dpo(batch, device="cpu", **self.options)["pairs"]


def dpo_pairs(
    ds: Any,
    loss: Any = "sigmoid",
    beta: Optional[float] = None,
    label_smoothing: float = 0.0,
    *,
    weights: Optional[Sequence[float]] = None,
    f_divergence: str = "reverse_kl",
    f_alpha: float = 0.5,
    concurrency: int = 2,
    batch_size: Optional[int] = None,
    num_cpus: float = 1.0,
) -> Any:
    """A Dataset of ``prefscope dpo``'s per-pair rows (id, chosen_reward, rejected_reward,
    margin, loss), one block of pairs at a time. For pairwise objectives only, as
    :func:`dpo_metrics` (a batch-coupled loss would depend on how the rows fall into blocks)."""
    options = _options(loss, beta, label_smoothing, weights, f_divergence, f_alpha)
    # Refuse what blocks would change before any work is scheduled.
    try:
        first = ds.take_batch(1, batch_format="pyarrow")
    except ValueError:  # an empty dataset: nothing to refuse
        first = None
    if first is not None and first.num_rows:
        _prefscope.dpo_shard(first, **options)
    return ds.map_batches(
        _DpoPairs,
        fn_constructor_kwargs={"options": options},
        batch_format="pyarrow",
        batch_size=batch_size,
        concurrency=concurrency,
        num_cpus=num_cpus,
    )


def pickapic_rows(batch: pa.Table) -> pa.Table:
    """Pick-a-Pic rows (``caption``, ``jpg_0``, ``jpg_1``, and ``ranking_id`` or ``id`` naming the
    pair) as two manifest rows each: ``prompt``, ``image`` (the bytes), ``image_name`` (the
    ``image_k_uid`` when present), ``group`` (the pair), ``id`` (``<pair>:0``, ``<pair>:1``)."""
    names = batch.column_names
    for column in ("caption", "jpg_0", "jpg_1"):
        if column not in names:
            raise PrefscopeError(f"Pick-a-Pic rows: missing column `{column}` (the layout has caption, jpg_0, jpg_1)")
    key = "id" if "id" in names else "ranking_id" if "ranking_id" in names else None
    if key is None:
        raise PrefscopeError("Pick-a-Pic rows: give `ranking_id` or `id` to name each pair (a group of two images)")
    pair = pc.cast(batch.column(key), pa.string())
    if pair.null_count:
        raise PrefscopeError(f"Pick-a-Pic rows: `{key}` is null in {pair.null_count} rows; every pair needs its name")
    if len(pc.unique(pair)) != len(pair):
        raise PrefscopeError(f"Pick-a-Pic rows: `{key}` repeats within a block; each pair needs a name of its own")
    sides = []
    for k in (0, 1):
        uid = f"image_{k}_uid"
        sides.append(
            {
                "prompt": batch.column("caption"),
                "image": batch.column(f"jpg_{k}"),
                "image_name": pc.cast(batch.column(uid), pa.string())
                if uid in names
                else pc.binary_join_element_wise(pair, pa.scalar(str(k)), ":"),
                "group": pair,
                "id": pc.binary_join_element_wise(pair, pa.scalar(str(k)), ":"),
            }
        )
    table = pa.concat_tables([pa.table(s) for s in sides])
    # Both images of a pair next to each other, pairs in input order.
    order = [i + n for i in range(batch.num_rows) for n in (0, batch.num_rows)]
    return table.take(pa.array(order))


class _ScoreActor:
    """A model loaded once per actor, scoring the blocks it is handed."""

    def __init__(self, model_dir: str, device: str, options: dict, pickapic: bool, batch: int) -> None:
        self.scorer = Scorer(model_dir, device, batch=batch)
        self.options = options
        self.pickapic = pickapic

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.pickapic:
            batch = pickapic_rows(batch)
        else:
            _require_ids(batch, "score")
        return self.scorer.score(batch, **self.options)


def score(
    ds: Any,
    model_dir: str,
    preset: str = "clip",
    reweight: float = 0.3,
    *,
    layout: str = "manifest",
    reference_prompts: Optional[Sequence[str]] = None,
    root: Optional[str] = None,
    device: str = "auto",
    concurrency: int = 1,
    batch_size: int = 64,
    model_batch: int = 16,
    num_cpus: float = 1.0,
    num_gpus: float = 0,
) -> Any:
    """``prefscope score``'s rows for every row of ``ds``, as a Dataset.

    ``layout="manifest"``: rows with ``prompt``, ``image`` (paths relative to ``root``, or
    bytes), ``id`` and optional ``group`` (the prompt when absent). The softmax and ranks are
    within groups, so rows are grouped first (``groupby(...).map_groups``): a group is never
    split across blocks. ``layout="pickapic"``: Pick-a-Pic's rows, each pair one group of two.

    ``concurrency`` actors each load the model (``device`` as :class:`prefscope.Scorer`;
    ``num_gpus`` reserves GPUs for them on a GPU cluster, where each actor opens the node's
    default wgpu adapter: one actor per GPU node). ``model_dir`` and ``root`` must exist on every
    node; relative paths are made absolute on the driver."""
    if layout not in ("manifest", "pickapic"):
        raise PrefscopeError(f"layout must be `manifest` or `pickapic`, got `{layout}`")
    options = {
        "preset": preset,
        "reweight": reweight,
        "reference_prompts": list(reference_prompts) if reference_prompts is not None else None,
        "root": os.path.abspath(root) if root is not None else None,
    }
    kwargs = {
        "fn_constructor_kwargs": {
            "model_dir": os.path.abspath(model_dir),
            "device": device,
            "options": options,
            "pickapic": layout == "pickapic",
            "batch": model_batch,
        },
        "batch_format": "pyarrow",
        "concurrency": concurrency,
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
    }
    if layout == "pickapic":
        return ds.map_batches(_ScoreActor, batch_size=batch_size, **kwargs)
    key = "group" if "group" in ds.schema().names else "prompt"
    return ds.groupby(key).map_groups(_ScoreActor, **kwargs)
