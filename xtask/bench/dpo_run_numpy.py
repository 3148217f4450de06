"""The numpy + pandas baseline of crates/cli/benches/dpo_run.rs: a DPO run's evaluations
(eval-{step}.parquet in DIR) read with pandas, every step's sigmoid metrics, ranking
accuracies, displacement diagnostics and calibration (ECE over both orders of each pair in
ten uniform bins, Brier, against preference_share), then the flips between consecutive steps
(merged on id) and each pair's margin trajectory (a pivot over steps), as an analyst would
write them. Prints {"total_s", "compute_s", "flips"} (best of REPEATS) as JSON.

Usage: python dpo_run_numpy.py DIR REPEATS
"""
import glob
import json
import os
import re
import sys
import time

import numpy as np
import pandas as pd

BETA = 0.1


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def metrics(df):
    pc, pr = df["policy_chosen_logps"].to_numpy(), df["policy_rejected_logps"].to_numpy()
    rc, rr = df["reference_chosen_logps"].to_numpy(), df["reference_rejected_logps"].to_numpy()
    cl, rl = df["chosen_length"].to_numpy(), df["rejected_length"].to_numpy()
    share = df["preference_share"].to_numpy()
    chosen, rejected = BETA * (pc - rc), BETA * (pr - rr)
    margin = chosen - rejected
    m = {
        "rewards/chosen": chosen.mean(),
        "rewards/rejected": rejected.mean(),
        "rewards/accuracies": (chosen > rejected).mean(),
        "rewards/margins": margin.mean(),
        "logps/chosen": pc.mean(),
        "logps/rejected": pr.mean(),
        "loss": -log_sigmoid(margin).mean(),
        "ranking/accuracy": (pc >= pr).mean(),
        "ranking/accuracy_normalized": (pc / np.maximum(cl, 1) >= pr / np.maximum(rl, 1)).mean(),
        "ranking/idealized_accuracy": (rc - rr + np.log(share / (1 - share)) / BETA > 0).mean(),
        "diagnostics/chosen_logratio_negative": (pc - rc < 0).mean(),
        "diagnostics/both_logratios_negative": ((pc - rc < 0) & (pr - rr < 0)).mean(),
        "diagnostics/margin_length_spearman": pd.Series(margin).corr(pd.Series((cl - rl).astype(float)), method="spearman"),
    }
    # Calibration of sigma(margin) over both orders, against the shares.
    p = 1.0 / (1.0 + np.exp(-margin))
    probs, targets = np.concatenate([p, 1 - p]), np.concatenate([share, 1 - share])
    bins = np.searchsorted(np.linspace(0.0, 1.0, 11)[1:-1], probs)
    count = np.bincount(bins, minlength=10)
    sum_p, sum_y = np.bincount(bins, probs, minlength=10), np.bincount(bins, targets, minlength=10)
    m["calibration/ece"] = np.abs(sum_y - sum_p).sum() / probs.size
    m["calibration/brier"] = ((p - share) ** 2).mean()
    assert count.sum() == probs.size
    return m, pd.DataFrame({"id": df["id"].to_numpy(), "margin": margin})


def run(folder):
    start = time.perf_counter()
    files = glob.glob(os.path.join(folder, "*.parquet"))
    steps = [int(re.findall(r"\d+", os.path.basename(f))[-1]) for f in files]
    frames = [pd.read_parquet(f) for f in files]
    read = time.perf_counter() - start
    order = np.argsort(steps)
    per_step, margins = [], []
    for k in order:
        m, pairs = metrics(frames[k])
        per_step.append((steps[k], m))
        margins.append(pairs.assign(step=steps[k]))
    # Flips: each pair against the previous step.
    flips = 0
    for before, after in zip(margins, margins[1:]):
        both = before.merge(after, on="id", suffixes=("_before", "_after"))
        flips += int(((both["margin_before"] > 0) != (both["margin_after"] > 0)).sum())
    # Trajectories: one row per pair, one column per step.
    trajectories = pd.concat(margins).pivot(index="id", columns="step", values="margin")
    assert len(trajectories) > 0 and len(per_step) == len(files)
    return read, time.perf_counter() - start, flips


def main():
    folder, repeats = sys.argv[1], int(sys.argv[2])
    best = min((run(folder) for _ in range(repeats)), key=lambda r: r[1])
    print(json.dumps({"total_s": best[1], "compute_s": best[1] - best[0], "flips": best[2]}))


if __name__ == "__main__":
    main()
