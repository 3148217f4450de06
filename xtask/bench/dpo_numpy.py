"""numpy baseline for `cargo xtask bench`: the same objectives and metrics as prefscope's DPO
pipeline, vectorised, on the same Parquet file. Prints one JSON line with timings.

Usage: python dpo_numpy.py FILE.parquet REPEATS
"""
import json
import sys
import time

import numpy as np
import pyarrow.parquet as pq


def logsig(x):
    return -np.logaddexp(0.0, -x)


def sig(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def metrics(cr, rr, pc, pr):
    return dict(chosen=cr.mean(), rejected=rr.mean(), acc=(cr > rr).mean(), margin=(cr - rr).mean(), lc=pc.mean(), lr=pr.mean())


def everything(pc, pr, rc, rr, cl, rl, beta=0.1, eps=0.1):
    out = {}
    dw, dl = pc - rc, pr - rr
    d = dw - dl
    x = beta * d
    out["sigmoid"] = (-logsig(x)).mean()
    out["hinge"] = np.maximum(1 - x, 0).mean()
    avg = dw / np.maximum(cl, 1) - dl / np.maximum(rl, 1)
    out["ipo"] = ((avg - 1 / (2 * beta)) ** 2).mean()
    out["exo_pair"] = (sig(x) * (logsig(x) - np.log1p(-eps)) + sig(-x) * (logsig(-x) - np.log(eps))).mean()
    out["nca_pair"] = (-logsig(beta * dw) - 0.5 * logsig(-beta * dw) - 0.5 * logsig(-beta * dl)).mean()
    out["robust"] = ((-(1 - eps) * logsig(x) + eps * logsig(-x)) / (1 - 2 * eps)).mean()
    out["bco_pair"] = (-logsig(beta * dw) - logsig(-beta * dl)).mean()
    out["sppo_hard"] = ((dw - 0.5 / beta) ** 2 + (dl + 0.5 / beta) ** 2).mean()
    a = np.sort(pc - pr) - np.sort(rc - rr)
    out["aot"] = (-(1 - eps) * logsig(beta * a) - eps * logsig(-beta * a)).mean()
    a = np.sort(dw) - np.sort(dl)
    out["aot_unpaired"] = (-(1 - eps) * logsig(beta * a) - eps * logsig(-beta * a)).mean()
    out["apo_zero"] = (sig(-beta * dw) + sig(beta * dl)).mean()
    out["apo_down"] = (sig(beta * dw) + sig(-x)).mean()
    m = sig(x / 0.05)
    out["discopop"] = ((1 - m) * -logsig(x) + np.exp(logsig(x / 0.05) - x)).mean()
    out["sft"] = -pc.sum() / cl.sum()
    out["sigmoid_norm"] = (-logsig(beta * avg)).mean()
    out["cdpo"] = (-(1 - eps) * logsig(x) - eps * logsig(-x)).mean()
    ac, ar = pc / cl, pr / rl
    out["simpo"] = (-logsig(beta * (ac - ar) - 0.5)).mean()
    out["cpo"] = (-logsig(beta * (pc - pr))).mean() + out["sft"]
    lo = (ac - ar) - (np.log(-np.expm1(ac)) - np.log(-np.expm1(ar)))
    out["orpo"] = out["sft"] - beta * logsig(lo).mean()
    out["kto"] = np.concatenate([sig(-beta * dw), sig(-beta * (-dl))]).mean()
    mu = np.concatenate([beta * dw, beta * dl]).mean()
    out["bco"] = np.concatenate([-logsig(beta * dw - mu), -logsig(-(beta * dl - mu))]).mean()
    out["metrics"] = metrics(beta * dw, beta * dl, pc, pr)
    out["ranking"] = (pc >= pr).mean()
    return out


def main():
    path, repeats = sys.argv[1], int(sys.argv[2])
    best_total, best_compute = float("inf"), float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        t = pq.read_table(path)
        cols = {k: t.column(k).to_numpy().astype(np.float64) for k in (
            "policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps",
            "chosen_length", "rejected_length")}
        t1 = time.perf_counter()
        everything(cols["policy_chosen_logps"], cols["policy_rejected_logps"], cols["reference_chosen_logps"],
                   cols["reference_rejected_logps"], cols["chosen_length"], cols["rejected_length"])
        t2 = time.perf_counter()
        best_total = min(best_total, t2 - t0)
        best_compute = min(best_compute, t2 - t1)
    print(json.dumps(dict(rows=t.num_rows, total_s=best_total, compute_s=best_compute, numpy=np.__version__)))


if __name__ == "__main__":
    main()
