"""Device names, NVML telemetry and library versions for latency results.

NVML (the ``nvidia-ml-py`` package, imported as ``pynvml``) is optional: on a machine without it,
or without an NVIDIA driver, every function here answers from ``/proc/cpuinfo``, ``platform`` or
PyTorch instead, and nothing raises.

Example:
    >>> name = cpu_name()
    >>> isinstance(name, str) and len(name) > 0
    True
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import sys
from typing import Any

# NVML clock-event ("throttle") reason bits, from the NVML API reference.
THROTTLE_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU model ("AMD EPYC 7B13"), from /proc/cpuinfo, else ``platform``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def _cpu_mhz() -> float | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "cpu MHz":
                    return round(float(value), 1)
    except (OSError, ValueError):
        pass
    return None


def cpu_telemetry() -> dict[str, Any]:
    """Load average and current frequency (what disturbs a CPU measurement), where known."""
    out: dict[str, Any] = {"cpu_count": os.cpu_count() or 0}
    try:
        out["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    mhz = _cpu_mhz()
    if mhz is not None:
        out["cpu_mhz"] = mhz
    return out


class Nvml:
    """A handle on one GPU through NVML, or an inert object when NVML does not answer.

    ``available`` tells which. ``sample()`` returns clocks, temperature, power and throttle
    reasons (only the readings the GPU supports); ``static()`` the driver and limits.
    """

    def __init__(self, torch_index: int = 0) -> None:
        self.available = False
        self._nvml: Any = None
        self._handle: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # no package, no driver, no library: NVML absent
            return
        self._nvml = pynvml
        self._handle = _find_handle(pynvml, torch_index)
        self.available = self._handle is not None

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None
            self.available = False

    def _read(self, fn: str, *args: Any) -> Any:
        try:
            value = getattr(self._nvml, fn)(self._handle, *args)
        except Exception:
            return None
        return value.decode() if isinstance(value, bytes) else value

    def name(self) -> str | None:
        return self._read("nvmlDeviceGetName") if self.available else None

    def uuid(self) -> str | None:
        return self._read("nvmlDeviceGetUUID") if self.available else None

    def static(self) -> dict[str, Any]:
        if not self.available:
            return {}
        n = self._nvml
        out: dict[str, Any] = {}
        try:
            drv = n.nvmlSystemGetDriverVersion()
            out["driver"] = drv.decode() if isinstance(drv, bytes) else drv
        except Exception:
            pass
        _put(out, "sm_clock_max_mhz", self._read("nvmlDeviceGetMaxClockInfo", n.NVML_CLOCK_SM))
        _put(out, "mem_clock_max_mhz", self._read("nvmlDeviceGetMaxClockInfo", n.NVML_CLOCK_MEM))
        limit = self._read("nvmlDeviceGetEnforcedPowerLimit")
        _put(out, "power_limit_w", None if limit is None else round(limit / 1000.0, 1))
        return out

    def sample(self) -> dict[str, Any]:
        if not self.available:
            return {}
        n = self._nvml
        out: dict[str, Any] = {}
        _put(out, "sm_clock_mhz", self._read("nvmlDeviceGetClockInfo", n.NVML_CLOCK_SM))
        _put(out, "mem_clock_mhz", self._read("nvmlDeviceGetClockInfo", n.NVML_CLOCK_MEM))
        _put(
            out,
            "temperature_c",
            self._read("nvmlDeviceGetTemperature", getattr(n, "NVML_TEMPERATURE_GPU", 0)),
        )
        power = self._read("nvmlDeviceGetPowerUsage")
        _put(out, "power_w", None if power is None else round(power / 1000.0, 1))
        reasons = self._read("nvmlDeviceGetCurrentClocksEventReasons")
        if reasons is None:
            reasons = self._read("nvmlDeviceGetCurrentClocksThrottleReasons")
        if reasons is not None:
            out["throttle_reasons"] = throttle_names(int(reasons))
        return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def throttle_names(mask: int) -> str:
    """Comma-separated names of the set NVML clock-event bits ("" when none)."""
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    rest = mask & ~sum(THROTTLE_REASONS)
    if rest:
        names.append(f"other_0x{rest:x}")
    return ",".join(names)


def _find_handle(nvml: Any, torch_index: int) -> Any:
    """The NVML handle of the GPU PyTorch calls ``cuda:torch_index`` (UUID, then PCI, then
    index; CUDA_VISIBLE_DEVICES makes the plain index unreliable)."""
    props = None
    try:
        import torch

        props = torch.cuda.get_device_properties(torch_index)
    except Exception:
        pass
    uuid = getattr(props, "uuid", None)
    if uuid is not None:
        text = str(uuid)
        for candidate in (text, f"GPU-{text}"):
            try:
                return nvml.nvmlDeviceGetHandleByUUID(candidate)
            except Exception:
                pass
    bus = getattr(props, "pci_bus_id", None)
    if bus is not None:
        domain = getattr(props, "pci_domain_id", 0)
        dev = getattr(props, "pci_device_id", 0)
        try:
            return nvml.nvmlDeviceGetHandleByPciBusId(f"{domain:08x}:{bus:02x}:{dev:02x}.0")
        except Exception:
            pass
    if not os.environ.get("CUDA_VISIBLE_DEVICES"):
        try:
            return nvml.nvmlDeviceGetHandleByIndex(torch_index)
        except Exception:
            pass
    return None


def gpu_name(torch_index: int = 0) -> str:
    """The GPU's name from NVML, else from PyTorch."""
    nvml = Nvml(torch_index)
    try:
        name = nvml.name()
    finally:
        nvml.close()
    if name:
        return str(name)
    import torch

    return torch.cuda.get_device_name(torch_index)


def device_name(device: str) -> str:
    """The name recorded for a device string ("cpu", "cuda", "cuda:1")."""
    if device.startswith("cuda"):
        return gpu_name(cuda_index(device))
    return cpu_name()


def cuda_index(device: str) -> int:
    """The index in "cuda:N" (the current device for plain "cuda")."""
    _, _, idx = device.partition(":")
    if idx:
        return int(idx)
    import torch

    return torch.cuda.current_device()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Versions of Python, PyTorch (+ CUDA, cuDNN when used), ONNX Runtime and ``extra``."""
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__}
    if torch.version.cuda:
        out["torch_cuda"] = str(torch.version.cuda)
    if torch.cuda.is_available():
        cudnn = torch.backends.cudnn.version()
        if cudnn:
            out["cudnn"] = str(cudnn)
    for dist, key in (
        ("onnxruntime", "onnxruntime"),
        ("onnxruntime-gpu", "onnxruntime"),
        ("numpy", "numpy"),
        ("opennac", "opennac"),
        *((d, d) for d in extra),
    ):
        v = _version(dist)
        if v and key not in out:
            out[key] = v
    if "tensorrt" in extra and "tensorrt" not in out and "tensorrt" in sys.modules:
        out["tensorrt"] = str(getattr(sys.modules["tensorrt"], "__version__", "?"))
    return out


__all__ = [
    "Nvml",
    "THROTTLE_REASONS",
    "cpu_name",
    "cpu_telemetry",
    "cuda_index",
    "device_name",
    "gpu_name",
    "library_versions",
    "throttle_names",
]
