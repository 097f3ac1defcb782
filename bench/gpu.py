"""The torch trainer's throughput, GPU utilisation from NVML, and the telemetry's overhead.
On a machine without a GPU it says so and measures the CPU path only.

    python bench/gpu.py [ROWS]
"""

from __future__ import annotations

import statistics
import sys
import time

from common import machine_facts


def main() -> None:
    import numpy as np
    import torch

    from mlci.training.base import TrainParams
    from mlci.training.gpu import GpuSampler
    from mlci.training.torch import TorchTrainer

    print(machine_facts())
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 32)).astype(np.float32)
    y = (x[:, :4].sum(axis=1) > 0).astype(int)
    epochs = 200
    params = TrainParams(
        data="-",
        target="-",
        backend="torch",
        seed=0,
        torch={"hidden": [256, 256], "epochs": epochs, "patience": epochs},
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {device}; {rows:,} rows x 32 features, full batch, {epochs} epochs")

    def run(sample: bool) -> tuple[float, dict[str, object]]:
        sampler = GpuSampler(interval_s=0.1) if sample else GpuSampler(reason="off")
        sampler.start()
        start = time.perf_counter()
        TorchTrainer().fit(x, y, params)
        if device == "cuda":
            torch.cuda.synchronize()
        took = time.perf_counter() - start
        return took, sampler.stop()

    run(False)  # warm-up (CUDA context, kernels)
    plain = statistics.median(run(False)[0] for _ in range(3))
    timed = [run(True) for _ in range(3)]
    with_tel = statistics.median(t for t, _ in timed)
    summary = timed[-1][1]
    print("| | seconds | samples/s |\n|---|---:|---:|")
    print(f"| without telemetry | {plain:.2f} | {rows * 0.9 * epochs / plain:,.0f} |")
    print(f"| with NVML telemetry | {with_tel:.2f} | {rows * 0.9 * epochs / with_tel:,.0f} |")
    print(f"\ntelemetry overhead: {(with_tel / plain - 1) * 100:+.1f}% (target < 1%)")
    if summary.get("available"):
        print(
            f"GPU: {summary['gpus'][0]['name']}; mean utilisation {summary['util_mean']:.0f}%"
            f", peak {summary['util_peak']:.0f}%, peak memory {summary['mem_peak_mb']:.0f} MiB"
            " (target: mean >= 90%)"
        )
    else:
        print(f"GPU: {summary.get('reason')}: utilisation not measured on this machine")


if __name__ == "__main__":
    main()
