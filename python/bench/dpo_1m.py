"""`cargo xtask bench-python`: prefscope.dpo on one million pairs from Python beside numpy,
timed in the same run on the same Parquet file (best of REPEATS, alternating). Prints a table
and the ratios; asserts nothing about speed (it checks the two agree before timing).

Rows:
- report: the file to TRL's metrics (sigmoid), ranking accuracies, diagnostics (Spearman's ρ
  included) and the per-pair table (id, rewards, margin, loss) as Arrow; numpy does the same.
- every objective: the workload of `cargo xtask bench` (xtask/bench/dpo_numpy.py's 21
  objectives, ε = 0.1) on a table already read, through prefscope.compare.
"""

import os
import pathlib
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import prefscope

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "xtask" / "bench"))
import dpo_numpy  # noqa: E402  (the numpy baseline of `cargo xtask bench`)

PAIRS = 1_000_000
REPEATS = int(os.environ.get("REPEATS", "5"))
PAIRWISE = ["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
            "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm", "cdpo"]
STANDALONE = ["simpo", "cpo", "orpo", "kto", "bco"]


def data(path):
    if path.exists():
        return
    rng = np.random.default_rng(7)
    a, b = rng.integers(1, 512, PAIRS), rng.integers(1, 512, PAIRS)
    pc = -(0.2 + 2.8 * rng.random(PAIRS)) * a
    pr = -(0.2 + 2.8 * rng.random(PAIRS)) * b
    table = pa.table({
        "id": pa.array([f"pair-{i}" for i in range(PAIRS)]),
        "policy_chosen_logps": pc,
        "policy_rejected_logps": pr,
        "reference_chosen_logps": pc + 16.0 * (rng.random(PAIRS) - 0.5),
        "reference_rejected_logps": pr + 16.0 * (rng.random(PAIRS) - 0.5),
        "chosen_length": a,
        "rejected_length": b,
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def logsig(x):
    return -np.logaddexp(0.0, -x)


def ranks(a):
    """Average ranks for ties (as prefscope's Spearman)."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    cuts = np.flatnonzero(np.diff(s)) + 1
    starts, ends = np.r_[0, cuts], np.r_[cuts, len(a)]
    out = np.empty(len(a))
    out[order] = np.repeat((starts + ends - 1) / 2.0 + 1.0, ends - starts)
    return out


def numpy_report(path, beta=0.1):
    t = pq.read_table(path)
    col = lambda k: t.column(k).to_numpy().astype(np.float64)
    pc, pr, rc, rr = (col(k) for k in ("policy_chosen_logps", "policy_rejected_logps",
                                       "reference_chosen_logps", "reference_rejected_logps"))
    cl, rl = col("chosen_length"), col("rejected_length")
    cw, cr = beta * (pc - rc), beta * (pr - rr)
    margin = cw - cr
    loss = -logsig(margin)
    dw, dl = pc - rc, pr - rr
    m = {
        "rewards/chosen": cw.mean(), "rewards/rejected": cr.mean(), "rewards/accuracies": (cw > cr).mean(),
        "rewards/margins": margin.mean(), "logps/chosen": pc.mean(), "logps/rejected": pr.mean(), "loss": loss.mean(),
        "ranking/accuracy": (pc >= pr).mean(),
        "ranking/accuracy_normalized": (pc / np.maximum(cl, 1) >= pr / np.maximum(rl, 1)).mean(),
        "diagnostics/chosen_logratio_negative": (dw < 0).mean(),
        "diagnostics/both_logratios_negative": ((dw < 0) & (dl < 0)).mean(),
        "diagnostics/margin_length_spearman": np.corrcoef(ranks(margin), ranks(cl - rl))[0, 1],
    }
    pairs = pa.table({"id": t.column("id"), "chosen_reward": cw, "rejected_reward": cr, "margin": margin, "loss": loss})
    return m, pairs


def prefscope_report(path):
    r = prefscope.dpo(path, device="cpu")
    return r["metrics"], r["pairs"]


def numpy_every(table):
    cols = {k: table.column(k).to_numpy().astype(np.float64) for k in (
        "policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps",
        "chosen_length", "rejected_length")}
    return dpo_numpy.everything(*cols.values())


def prefscope_every(table):
    return prefscope.compare(table, PAIRWISE + STANDALONE, beta=0.1, label_smoothing=0.1)


def best(fn, *args):
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    path = ROOT / "target" / "bench-data" / "dpo_pairs_1m_py.parquet"
    data(path)
    # Same numbers first: the two sides do the same work.
    (mp, pp), (mn, pn) = prefscope_report(path), numpy_report(path)
    for k, v in mn.items():
        assert abs(mp[k] - v) <= 1e-9 * max(1.0, abs(v)), (k, mp[k], v)
    assert pp.num_rows == pn.num_rows == PAIRS
    table = pq.read_table(path)
    every_p, every_n = prefscope_every(table)["losses"], numpy_every(table)
    # The baseline's simpo and cpo carry no label smoothing: those two are checked at ε = 0.
    every_p.update(prefscope.compare(table, ["simpo", "cpo"], beta=0.1, label_smoothing=0.0)["losses"])
    for name in PAIRWISE + STANDALONE:
        want = every_n[name]
        assert abs(every_p[name] - want) <= 1e-9 * max(1.0, abs(want)), (name, every_p[name], want)

    rows = []
    times = {}
    for label, ours, theirs, args in [
        ("report (file → metrics + pairs)", prefscope_report, numpy_report, (path,)),
        ("every objective (table in memory)", prefscope_every, numpy_every, (table,)),
    ]:
        t_np, t_ps = [], []
        for _ in range(2):  # alternate, so neither side has the warmer cache
            t_np.append(best(theirs, *args))
            t_ps.append(best(ours, *args))
        times[label] = (min(t_ps), min(t_np))
        rows.append((label, min(t_ps), min(t_np)))
    print(f"prefscope {prefscope.__version__} (Python, release build) vs numpy {np.__version__}, "
          f"{PAIRS:,} pairs, best of {REPEATS}×2, {os.cpu_count()} CPUs")
    print(f"{'workload':<36} {'prefscope':>10} {'numpy':>10} {'speed-up':>9}")
    for label, ps, nps in rows:
        print(f"{label:<36} {ps * 1e3:>8.0f} ms {nps * 1e3:>8.0f} ms {nps / ps:>8.2f}×")


if __name__ == "__main__":
    main()
