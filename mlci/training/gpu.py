"""GPU telemetry through NVML (nvidia-ml-py): a background sampler and its summary.

Without a driver or a GPU it says so once and costs nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class GpuSampler:
    interval_s: float = 0.5
    samples: list[dict[str, float]] = field(default_factory=list)
    gpus: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0
    _elapsed: float = 0.0

    def start(self) -> GpuSampler:
        self._started = time.monotonic()
        if self.reason:  # told not to sample (e.g. not rank 0)
            return self
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError
            self.reason = f"no GPU ({type(exc).__name__})"
            return self
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            self.reason = "no GPU (NVML sees 0 devices)"
            return self
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        for i, h in enumerate(handles):
            name = pynvml.nvmlDeviceGetName(h)
            self.gpus.append(
                {
                    "index": i,
                    "name": name.decode() if isinstance(name, bytes) else name,
                    "memory_total_mb": pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**20,
                    "driver": _driver(pynvml),
                }
            )
        self._thread = threading.Thread(target=self._run, args=(pynvml, handles), daemon=True)
        self._thread.start()
        return self

    def _run(self, pynvml: Any, handles: list[Any]) -> None:
        while not self._stop.is_set():
            for i, h in enumerate(handles):
                try:
                    util = pynvml.nvmlDeviceGetUtilizationRates(h)
                    mem = pynvml.nvmlDeviceGetMemoryInfo(h)
                    power = pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0
                    temp = pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
                except pynvml.NVMLError:
                    continue
                self.samples.append(
                    {
                        "gpu": i,
                        "t": time.monotonic(),
                        "util": float(util.gpu),
                        "mem_mb": mem.used / 2**20,
                        "power_w": power,
                        "temp_c": float(temp),
                    }
                )
            self._stop.wait(self.interval_s)

    def stop(self) -> dict[str, Any]:
        self._elapsed = time.monotonic() - self._started
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            try:
                import pynvml

                pynvml.nvmlShutdown()
            except Exception:
                pass
        return self.summary()

    def summary(self) -> dict[str, Any]:
        if self.reason:
            return {"available": False, "reason": self.reason}
        utils = [s["util"] for s in self.samples]
        power = [s["power_w"] for s in self.samples]
        hours = self._elapsed / 3600.0
        return {
            "available": True,
            "gpus": self.gpus,
            "samples": len(self.samples),
            "util_mean": sum(utils) / len(utils) if utils else None,
            "util_peak": max(utils) if utils else None,
            "mem_peak_mb": max((s["mem_mb"] for s in self.samples), default=None),
            "energy_wh": (sum(power) / len(power)) * hours * len(self.gpus) if power else None,
            "gpu_hours": hours * len(self.gpus),
        }


def _driver(pynvml: Any) -> str:
    try:
        v = pynvml.nvmlSystemGetDriverVersion()
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception:
        return "unknown"


def probe() -> dict[str, Any]:
    """What NVML sees right now (for ``mlci doctor``)."""
    sampler = GpuSampler().start()
    return sampler.stop()
