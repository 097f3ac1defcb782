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


@dataclass(frozen=True)
class GpuFacts:
    """What the sampler found, as the facts file, the MLflow run and the report carry it."""

    available: bool = False
    reason: str | None = None
    gpus: tuple[dict[str, Any], ...] = ()
    samples: int = 0
    util_mean: float | None = None
    util_peak: float | None = None
    mem_peak_mb: float | None = None
    energy_wh: float | None = None
    gpu_hours: float | None = None

    @classmethod
    def from_dict(cls, raw: Any) -> GpuFacts:
        if not isinstance(raw, dict):
            return cls(reason="not recorded")
        if not raw.get("available"):
            return cls(reason=str(raw.get("reason") or "not recorded"))
        gpus = tuple(g for g in raw.get("gpus") or () if isinstance(g, dict))
        samples = raw.get("samples")
        return cls(
            True,
            None,
            gpus,
            samples if isinstance(samples, int) else 0,
            _num(raw.get("util_mean")),
            _num(raw.get("util_peak")),
            _num(raw.get("mem_peak_mb")),
            _num(raw.get("energy_wh")),
            _num(raw.get("gpu_hours")),
        )

    def to_dict(self) -> dict[str, Any]:
        if not self.available:
            return {"available": False, "reason": self.reason}
        return {
            "available": True,
            "gpus": list(self.gpus),
            "samples": self.samples,
            "util_mean": self.util_mean,
            "util_peak": self.util_peak,
            "mem_peak_mb": self.mem_peak_mb,
            "energy_wh": self.energy_wh,
            "gpu_hours": self.gpu_hours,
        }

    def name(self) -> str:
        """The first GPU's name, or why there is none (the MLflow tag ``mlci.gpu``)."""
        return str(self.gpus[0].get("name")) if self.available and self.gpus else str(self.reason)


def _num(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else None
