"""Per-token log-probabilities out of TRL's DPOTrainer (and KTOTrainer), in prefscope's formats.

TRL computes the policy's and the reference's log-probabilities inside ``_compute_loss`` and
keeps only the loss and batch means. :class:`ExportCallback` runs the same forward passes the
trainer runs (the same model calls, masks and autocast) over the evaluation set at every
evaluation and writes one row per pair: the four sequence log-probabilities TRL's metrics come
from, the per-token values behind them and the tokens themselves, so that ``prefscope dpo`` and
the DPO view open a real run and reproduce its ``eval_rewards/*`` and ``eval_logps/*``.

Usage::

    trainer = DPOTrainer(model=model, args=config, train_dataset=train, eval_dataset=held_out, ...)
    trainer.add_callback(ExportCallback("exports/eval-{step}.parquet", trainer))
    trainer.train()

The reference is what the trainer uses: its ``ref_model``; the base model with the PEFT adapter
switched off (or the adapter named ``ref``); or, with ``precompute_ref_log_probs=True`` and no
reference kept in memory, the model as it was when training began (the values TRL precomputed),
whose per-token log-probabilities the callback records in ``on_train_begin``.

From a ``KTOTrainer`` the callback writes TRL's unpaired layout instead (docs/DESIGN.md
"Unpaired (KTO) rows"): one row per example with its ``label``, the completion's log-probabilities,
``batch`` (the index of its evaluation batch) and ``kl_policy_logps``/``kl_reference_logps``, the
log-probabilities of the mismatched "KL sequence" KTOTrainer pairs with it, so that
``prefscope dpo --loss kto`` reproduces the trainer's per-batch KL and its ``eval_kl``,
``eval_rewards/*``, ``eval_logps/*`` and ``eval_loss``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Optional

import pyarrow as pa

try:
    import torch
    from transformers import TrainerCallback
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("prefscope.trl needs torch and transformers (pip install 'prefscope[trl]')") from e

__all__ = ["ExportCallback", "export_eval"]

_NON_MODEL_KEYS = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}
_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids", "ref_chosen_logps", "ref_rejected_logps")


def _text(value: Any) -> str:
    """A prompt or completion as text (a conversation as its messages' contents)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(str(m.get("content", m)) if isinstance(m, dict) else str(m) for m in value)
    return "" if value is None else str(value)


class _Forward:
    """The trainer's forward passes for one padded batch, as ``DPOTrainer._compute_loss`` runs them."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    def per_token(self, model: Any, batch: dict, adapter: Any = contextlib.nullcontext()) -> torch.Tensor:
        """Per-token log-probabilities of the completion tokens' predictions, (2B, L-1); zero
        outside the completion. Rows: the B chosen sequences, then the B rejected ones."""
        kwargs = {k: v for k, v in batch.items() if k not in _NON_MODEL_KEYS}
        kwargs["use_cache"] = False
        labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
        shift = batch["completion_mask"][..., 1:]
        with torch.no_grad(), adapter, self.trainer.compute_loss_context_manager():
            out = model(**kwargs, labels=labels, fused_lm_head=True)
        logps = out.log_probs[:, -shift.size(1) :]
        return logps * shift

    def reference_adapter(self) -> Any:
        """A context in which the trainer's own model is the reference (PEFT), or None."""
        trainer = self.trainer
        from accelerate.utils import is_peft_model

        if trainer.ref_model is None and is_peft_model(trainer.model):
            from trl.trainer.utils import use_adapter

            unwrapped = trainer.accelerator.unwrap_model(trainer.model)
            return use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        return None


def _batches(trainer: Any, dataset: Any, wanted: tuple = _COLUMNS):
    """The evaluation set in the trainer's order and batch size: (rows, padded batch on device)."""
    size = trainer.args.per_device_eval_batch_size
    columns = [c for c in wanted if c in dataset.column_names]
    for start in range(0, len(dataset), size):
        rows = dataset.select(range(start, min(start + size, len(dataset))))
        examples = [{c: row[c] for c in columns} for row in rows]
        batch = trainer.data_collator(examples)
        batch = {k: v.to(trainer.accelerator.device) if hasattr(v, "to") else v for k, v in batch.items()}
        yield start, rows, batch


def _tokens(tokenizer: Any, ids: torch.Tensor, mask: torch.Tensor) -> list:
    """The predicted completion tokens as text, one string per token."""
    chosen = ids[1:][mask.bool()].tolist()
    return [tokenizer.decode([i]) for i in chosen]


def check(trainer: Any) -> None:
    """Refuses, before training starts, the setups the export cannot follow."""
    dataset = trainer.eval_dataset
    if dataset is None or isinstance(dataset, dict) or not hasattr(dataset, "select"):
        raise ValueError(
            "ExportCallback exports one map-style evaluation set: give the trainer a single datasets.Dataset "
            "as eval_dataset"
        )
    if getattr(trainer, "_is_vision_dataset", False):
        raise ValueError("ExportCallback exports text preference data; vision datasets are not supported")
    if getattr(trainer, "ld_alpha", None) is not None:
        raise ValueError(
            "ExportCallback: ld_alpha (LD-DPO) weights the tail tokens, so the sequence log-probs are not the sum "
            "of the per-token values prefscope's format holds; run without ld_alpha to export"
        )
    if trainer.accelerator.num_processes > 1:
        raise ValueError(
            "ExportCallback runs the model on one process; with several (DDP, FSDP, DeepSpeed) the others would "
            "wait on it. Export from a single-process evaluation run (trainer.evaluate() with one process)."
        )


def export_eval(trainer: Any, path: str, reference_tokens: Optional[list] = None) -> pa.Table:
    """Runs the policy and the reference over ``trainer.eval_dataset`` and writes prefscope's DPO
    format to ``path`` (Parquet, or JSON Lines for ``.jsonl``); returns the table.

    ``reference_tokens``: per-token reference log-probabilities recorded before training (one
    entry per pair: chosen and rejected arrays), used when the trainer keeps no reference."""
    check(trainer)
    if _is_kto(trainer):
        return _export_kto(trainer, path, reference_tokens)
    dataset = trainer.eval_dataset
    forward = _Forward(trainer)
    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
    adapter = forward.reference_adapter()
    precomputed = trainer.ref_model is None and adapter is None
    if precomputed and reference_tokens is None:
        raise ValueError(
            "ExportCallback: the trainer keeps no reference model (precompute_ref_log_probs with full fine-tuning); "
            "add the callback before trainer.train() so that it records the reference's per-token values when "
            "training begins"
        )
    model = trainer.model
    was_training = model.training
    model.eval()
    out: dict = {k: [] for k in _SCHEMA.names}
    try:
        for start, rows, batch in _batches(trainer, dataset):
            n = len(rows)
            policy = forward.per_token(model, batch).float()
            if trainer.ref_model is not None:
                reference = forward.per_token(trainer.ref_model, batch).float()
            elif adapter is not None:
                reference = forward.per_token(model, batch, forward.reference_adapter()).float()
            else:
                reference = None
            shift = batch["completion_mask"][..., 1:]
            for j in range(n):
                row = rows[j]
                index = start + j
                for side, k in (("chosen", j), ("rejected", n + j)):
                    mask = shift[k].bool()
                    out[f"policy_{side}_token_logps"].append(policy[k][mask].double().tolist())
                    out[f"policy_{side}_logps"].append(float(policy[k].sum()))
                    if reference is not None:
                        out[f"reference_{side}_token_logps"].append(reference[k][mask].double().tolist())
                        out[f"reference_{side}_logps"].append(float(reference[k].sum()))
                    else:
                        values = reference_tokens[index][side]
                        out[f"reference_{side}_token_logps"].append(values)
                        # TRL's metrics use the precomputed sums, which the recorded values add up to.
                        out[f"reference_{side}_logps"].append(float(row[f"ref_{side}_logps"]))
                    out[f"{side}_tokens"].append(_tokens(tokenizer, batch["input_ids"][k], shift[k]))
                    out[f"{side}_length"].append(int(mask.sum()))
                out["id"].append(str(row["id"]) if "id" in row else str(index))
                out["prompt"].append(_text(row.get("prompt")))
                out["chosen"].append(_text(row.get("chosen")))
                out["rejected"].append(_text(row.get("rejected")))
    finally:
        model.train(was_training)
    loss_type = ",".join(trainer.loss_types) if hasattr(trainer, "loss_types") else ""
    return _write(pa.table(out, schema=_SCHEMA), path, trainer, {"trl.loss_type": loss_type})


def _is_kto(trainer: Any) -> bool:
    try:
        from trl.trainer.kto_trainer import KTOTrainer
    except ImportError:  # pragma: no cover - a TRL without KTOTrainer
        return False
    return isinstance(trainer, KTOTrainer)


# What KTOTrainer._compute_loss keeps out of the model's keyword arguments, for the completion
# and for the KL sequence (`_compute_kl_logps`).
_KTO_NON_MODEL = {"completion_mask", "KL_input_ids", "KL_attention_mask", "KL_completion_mask", "KL_token_type_ids",
                  "KL_mm_token_type_ids", "label", "ref_logps", "ref_KL_logps"}
_KTO_KL_NON_MODEL = {"input_ids", "attention_mask", "completion_mask", "KL_completion_mask", "KL_token_type_ids",
                     "KL_mm_token_type_ids", "label", "ref_logps", "ref_KL_logps"}
_KTO_COLUMNS = ("prompt_ids", "completion_ids", "KL_completion_ids", "label", "ref_logps", "ref_KL_logps")


class _KtoForward(_Forward):
    """KTOTrainer's forward passes for one padded batch, as ``_compute_loss`` and
    ``_compute_kl_logps`` run them."""

    def per_token(self, model: Any, batch: dict, adapter: Any = contextlib.nullcontext()) -> torch.Tensor:
        """Per-token log-probs of the completions' predictions, (B, L-1); zero outside them."""
        kwargs = {k: v for k, v in batch.items() if k not in _KTO_NON_MODEL}
        kwargs["use_cache"] = False
        labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
        shift = batch["completion_mask"][..., 1:]
        with torch.no_grad(), adapter, self.trainer.compute_loss_context_manager():
            out = model(**kwargs, labels=labels, fused_lm_head=True)
        return out.log_probs[:, -shift.size(1) :] * shift

    def kl_logps(self, model: Any, batch: dict, adapter: Any = contextlib.nullcontext()) -> torch.Tensor:
        """The KL sequences' log-probs, (B,), summed as ``_compute_kl_logps`` sums them."""
        kwargs = {k: v for k, v in batch.items() if k not in _KTO_KL_NON_MODEL}
        kwargs["input_ids"] = kwargs.pop("KL_input_ids")
        kwargs["attention_mask"] = kwargs.pop("KL_attention_mask")
        kwargs["use_cache"] = False
        if "KL_token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["KL_token_type_ids"]
        if "KL_mm_token_type_ids" in batch:
            kwargs["mm_token_type_ids"] = batch["KL_mm_token_type_ids"]
        labels = batch["KL_input_ids"].masked_fill(batch["KL_completion_mask"] == 0, -100)
        with torch.no_grad(), adapter, self.trainer.compute_loss_context_manager():
            out = model(**kwargs, labels=labels, fused_lm_head=True)
        return out.log_probs[:, -(labels.size(1) - 1) :].sum(-1)


def _export_kto(trainer: Any, path: str, reference_tokens: Optional[list]) -> pa.Table:
    """The unpaired layout from a KTOTrainer: one row per evaluation example."""
    dataset = trainer.eval_dataset
    forward = _KtoForward(trainer)
    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
    adapter = forward.reference_adapter()
    precomputed = trainer.ref_model is None and adapter is None
    if precomputed and reference_tokens is None:
        raise ValueError(
            "ExportCallback: the trainer keeps no reference model (precompute_ref_log_probs with full fine-tuning); "
            "add the callback before trainer.train() so that it records the reference's per-token values when "
            "training begins"
        )
    with_kl = bool(getattr(trainer, "calculate_KL", False))
    schema = _KTO_SCHEMA if with_kl else pa.schema([f for f in _KTO_SCHEMA if not f.name.startswith("kl_")])
    model = trainer.model
    was_training = model.training
    model.eval()
    out: dict = {k: [] for k in schema.names}
    try:
        for number, (start, rows, batch) in enumerate(_batches(trainer, dataset, _KTO_COLUMNS)):
            policy = forward.per_token(model, batch).float()
            kl_policy = forward.kl_logps(model, batch).float() if with_kl else None
            if trainer.ref_model is not None:
                reference = forward.per_token(trainer.ref_model, batch).float()
                kl_reference = forward.kl_logps(trainer.ref_model, batch).float() if with_kl else None
            elif adapter is not None:
                reference = forward.per_token(model, batch, forward.reference_adapter()).float()
                kl_reference = forward.kl_logps(model, batch, forward.reference_adapter()).float() if with_kl else None
            else:
                reference = kl_reference = None
            shift = batch["completion_mask"][..., 1:]
            for j in range(len(rows)):
                row = rows[j]
                index = start + j
                mask = shift[j].bool()
                out["policy_token_logps"].append(policy[j][mask].double().tolist())
                out["policy_logps"].append(float(policy[j].sum()))
                if reference is not None:
                    out["reference_token_logps"].append(reference[j][mask].double().tolist())
                    out["reference_logps"].append(float(reference[j].sum()))
                else:
                    # TRL's metrics use the precomputed sums, which the recorded values add up to.
                    out["reference_token_logps"].append(reference_tokens[index]["completion"])
                    out["reference_logps"].append(float(row["ref_logps"]))
                if with_kl:
                    out["kl_policy_logps"].append(float(kl_policy[j]))
                    out["kl_reference_logps"].append(
                        float(kl_reference[j]) if kl_reference is not None else float(row["ref_KL_logps"])
                    )
                out["completion_tokens"].append(_tokens(tokenizer, batch["input_ids"][j], shift[j]))
                out["completion_length"].append(int(mask.sum()))
                out["id"].append(str(row["id"]) if "id" in row else str(index))
                out["prompt"].append(_text(row.get("prompt")))
                out["completion"].append(_text(row.get("completion")))
                out["label"].append(bool(row["label"]))
                out["batch"].append(number)
    finally:
        model.train(was_training)
    extra = {
        "trl.trainer": "KTOTrainer",
        "trl.loss_type": str(getattr(trainer, "loss_type", "")),
        "trl.desirable_weight": str(trainer.desirable_weight),
        "trl.undesirable_weight": str(trainer.undesirable_weight),
    }
    return _write(pa.table(out, schema=schema), path, trainer, extra)


_KTO_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", pa.string()),
        ("completion", pa.string()),
        ("label", pa.bool_()),
        ("policy_logps", pa.float64()),
        ("reference_logps", pa.float64()),
        ("policy_token_logps", pa.list_(pa.float64())),
        ("reference_token_logps", pa.list_(pa.float64())),
        ("completion_tokens", pa.list_(pa.string())),
        ("completion_length", pa.int64()),
        ("batch", pa.int64()),
        ("kl_policy_logps", pa.float64()),
        ("kl_reference_logps", pa.float64()),
    ]
)


def _write(table: pa.Table, path: str, trainer: Any, extra: dict) -> pa.Table:
    """Writes an export with its metadata: who wrote it, β, the step (what `prefscope dpo`
    orders a run's evaluations by) and the trainer's own settings in `extra`."""
    table = table.replace_schema_metadata(
        {
            "prefscope.source": "prefscope.trl.ExportCallback",
            "trl.beta": str(trainer.beta),
            "trl.global_step": str(trainer.state.global_step),
            **extra,
        }
    )
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    if path.endswith((".jsonl", ".ndjson")):
        import json

        with open(path, "w", encoding="utf-8") as f:
            for row in table.to_pylist():
                f.write(json.dumps(row) + "\n")
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    return table


_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("policy_chosen_logps", pa.float64()),
        ("policy_rejected_logps", pa.float64()),
        ("reference_chosen_logps", pa.float64()),
        ("reference_rejected_logps", pa.float64()),
        ("policy_chosen_token_logps", pa.list_(pa.float64())),
        ("policy_rejected_token_logps", pa.list_(pa.float64())),
        ("reference_chosen_token_logps", pa.list_(pa.float64())),
        ("reference_rejected_token_logps", pa.list_(pa.float64())),
        ("chosen_tokens", pa.list_(pa.string())),
        ("rejected_tokens", pa.list_(pa.string())),
        ("chosen_length", pa.int64()),
        ("rejected_length", pa.int64()),
    ]
)


class ExportCallback(TrainerCallback):
    """Writes the evaluation set's log-probabilities in prefscope's DPO format (from a
    KTOTrainer, its unpaired layout) at every evaluation. ``path`` may hold ``{step}`` (one file per evaluation); otherwise each
    evaluation replaces the file. Only the main process computes and writes."""

    def __init__(self, path: str, trainer: Any) -> None:
        self.path = os.fspath(path)
        self.trainer = trainer
        self.written: list = []
        self._reference_tokens: Optional[list] = None

    def _main(self) -> bool:
        return self.trainer.accelerator.is_main_process

    def on_train_begin(self, args, state, control, **kwargs):
        trainer = self.trainer
        check(trainer)  # fail now, not at the first evaluation hours in
        forward = _Forward(trainer)
        if trainer.ref_model is not None or forward.reference_adapter() is not None or not self._main():
            return
        if state.global_step > 0:
            raise ValueError(
                "ExportCallback: training resumes at step {} with precompute_ref_log_probs and no reference model, "
                "so the model is no longer the reference; resume without the callback, or pass a ref_model".format(
                    state.global_step
                )
            )
        # The model is still the reference TRL precomputed from: record its per-token values.
        model = trainer.model
        was_training = model.training
        model.eval()
        recorded = []
        if _is_kto(trainer):
            try:
                kto = _KtoForward(trainer)
                for _, rows, batch in _batches(trainer, trainer.eval_dataset, _KTO_COLUMNS):
                    values = kto.per_token(model, batch).float()
                    shift = batch["completion_mask"][..., 1:]
                    for j in range(len(rows)):
                        recorded.append({"completion": values[j][shift[j].bool()].double().tolist()})
            finally:
                model.train(was_training)
            self._reference_tokens = recorded
            return
        try:
            for _, rows, batch in _batches(trainer, trainer.eval_dataset):
                n = len(rows)
                values = forward.per_token(model, batch).float()
                shift = batch["completion_mask"][..., 1:]
                for j in range(n):
                    recorded.append(
                        {
                            side: values[k][shift[k].bool()].double().tolist()
                            for side, k in (("chosen", j), ("rejected", n + j))
                        }
                    )
        finally:
            model.train(was_training)
        self._reference_tokens = recorded

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not self._main():
            return
        path = self.path.replace("{step}", str(state.global_step))
        export_eval(self.trainer, path, self._reference_tokens)
        self.written.append((state.global_step, path, dict(metrics or {})))
