"""PyTorch baseline for the GPU-kernel benchmark (crates/gpu/benches/kernels.rs): the same three
workloads in float32 on torch's best device (CUDA when present, else the CPU), timed with
synchronisation. Prints one JSON line of seconds (best of REPEATS, after a warm-up).

Usage: python kernels_torch.py SCALE REPEATS
"""
import json
import sys

import torch
import torch.nn.functional as F
from timing import best


def main():
    scale, repeats = float(sys.argv[1]), int(sys.argv[2])
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    g = torch.Generator(device="cpu").manual_seed(0)
    n, d = max(int(4096 * scale), 1), 1024
    a = torch.randn(n, d, generator=g).to(dev)
    b = torch.randn(n, d, generator=g).to(dev)
    scale_logit = torch.tensor(4.6052).exp().to(dev)

    def similarity():
        return scale_logit * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T

    pairs = max(int((1 << 20) * scale), 1)
    pc, pr, rc, rr = [
        (-200 + 100 * torch.rand(pairs, generator=g)).to(dev) for _ in range(4)]
    beta = 0.1

    def preference():
        cr, rj = beta * (pc - rc), beta * (pr - rr)
        loss = -F.logsigmoid(cr - rj)
        return torch.stack([cr.mean(), rj.mean(), (cr > rj).float().mean(), (cr - rj).mean(), pc.mean(), pr.mean(), loss.mean()])

    seqs, length = max(int((1 << 20) * scale), 1), 512
    # On the CPU an eighth of the sequences (as the Rust CPU twin); the rate is per token.
    fit = seqs if dev.type == "cuda" else max(seqs // 8, 1)
    pol = torch.rand(fit, length, generator=g).neg_().to(dev)
    ref = torch.rand(fit, length, generator=g).neg_().to(dev)

    def tokens():
        r = beta * (pol - ref)
        return r, r.sum(-1)

    out = dict(
        device=str(torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"),
        torch=torch.__version__,
        similarity=best(repeats, similarity, sync),
        preference=best(repeats, preference, sync),
        tokens=best(repeats, tokens, sync),
        token_count=fit * length,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
