"""Timing shared by the PyTorch baselines of `cargo xtask bench`."""
import time


def best(repeats, fn, sync):
    """Best wall time of `repeats` calls after one warm-up call, synchronising the device."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return min(times)
