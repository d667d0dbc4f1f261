"""The thread policy of the Numba kernels: run serially below a work threshold.

Starting a parallel region costs microseconds on an idle machine and milliseconds on a
loaded one (a region waits for its slowest thread to be scheduled), which dominates
sub-millisecond work; above a few hundred microseconds of work the threads pay off. Every
caller therefore compares an estimate of its work (edges, entries x dimension, elements)
with a threshold measured for that kernel family, and runs on one thread below it. Two
mechanisms serve that one rule:

``serial_below(work, threshold, single_blas=False)``
    context manager: Numba's thread count is 1 inside when ``work < threshold`` (the count
    is per calling thread, so other threads are unaffected); with ``single_blas`` numpy's
    OpenBLAS runs on one thread for the duration (process-wide, restored on exit).
``call_serial_below(kernel, work, threshold, *args)``
    ``kernel(*args)`` under that policy (no context-manager overhead on the parallel path).
``compile_twice(impl, **njit_options) -> (parallel, serial)`` and
``pick(parallel, serial, work, threshold)``
    for kernels called so often that even setting the thread count shows: ``impl`` is
    compiled once with ``parallel=True`` and once without, and the caller picks one. The serial
    variant is compiled from a renamed copy of ``impl``, so the two get separate entries in
    Numba's on-disk cache (the cache keys on the function's name, not on its options; sharing
    one name made a later process load whichever variant had been written first).
"""
from __future__ import annotations

import types
from typing import Any, Callable

import numba
from numba import njit

_BLAS_API: Any = None


def blas_thread_api() -> Any:
    """``(get_num_threads, set_num_threads)`` of the OpenBLAS numpy links against, found
    among the loaded libraries (Linux), or ``False``."""
    global _BLAS_API
    if _BLAS_API is None:
        _BLAS_API = False
        try:
            import ctypes

            with open("/proc/self/maps") as fh:
                paths = [ln.split()[-1] for ln in fh if "openblas" in ln.lower() and "/" in ln]
            paths = sorted(dict.fromkeys(paths), key=lambda p: "numpy" not in p)
            for path in paths:
                lib = ctypes.CDLL(path)
                for pattern in ("scipy_openblas_{}_num_threads64_", "openblas_{}_num_threads64_",
                                "openblas_{}_num_threads"):
                    get, set_ = pattern.format("get"), pattern.format("set")
                    if hasattr(lib, get) and hasattr(lib, set_):
                        getter, setter = getattr(lib, get), getattr(lib, set_)
                        getter.restype = ctypes.c_int
                        setter.argtypes = [ctypes.c_int]
                        _BLAS_API = (getter, setter)
                        return _BLAS_API
        except Exception:  # no /proc, no OpenBLAS (MKL, Accelerate): leave BLAS alone
            _BLAS_API = False
    return _BLAS_API


class serial_below:  # noqa: N801  (used like a function: ``with serial_below(work, n):``)
    """Context manager of the policy (see the module docstring)."""

    __slots__ = ("serial", "prev", "blas", "prev_blas")

    def __init__(self, work: int, threshold: int, single_blas: bool = False):
        self.serial = work < threshold
        self.blas = blas_thread_api() if single_blas else False

    def __enter__(self) -> "serial_below":
        self.prev = numba.get_num_threads()
        self.serial = self.serial and self.prev != 1
        self.prev_blas = self.blas[0]() if self.blas else 1
        if self.serial:
            numba.set_num_threads(1)
        if self.prev_blas != 1:
            self.blas[1](1)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.serial:
            numba.set_num_threads(self.prev)
        if self.prev_blas != 1:
            self.blas[1](self.prev_blas)


def call_serial_below(kernel: Callable, work: int, threshold: int, *args: Any) -> Any:
    """``kernel(*args)``, on one Numba thread when ``work < threshold``."""
    if work >= threshold:
        return kernel(*args)
    prev = numba.get_num_threads()
    if prev == 1:
        return kernel(*args)
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(prev)


def compile_twice(impl: Callable, **options: Any) -> tuple[Any, Any]:
    """``(parallel, serial)`` Numba dispatchers of one Python function (``prange`` loops run
    in order in the serial one), with separate on-disk cache entries."""
    copy = types.FunctionType(impl.__code__, impl.__globals__, impl.__name__ + "_serial",
                              impl.__defaults__, impl.__closure__)
    copy.__qualname__ = impl.__qualname__ + "_serial"
    copy.__module__ = impl.__module__
    copy.__doc__ = impl.__doc__
    return njit(parallel=True, **options)(impl), njit(**options)(copy)


def pick(parallel: Any, serial: Any, work: int, threshold: int) -> Any:
    """The variant of :func:`compile_twice` the policy chooses for ``work``."""
    return parallel if work >= threshold else serial


__all__ = ["serial_below", "call_serial_below", "compile_twice", "pick", "blas_thread_api"]
