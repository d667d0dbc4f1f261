"""Prometheus text exposition (format 0.0.4) of the service's own counters, written here so
the service needs no metrics library.

Series:
    rga_requests_total{endpoint, status}             counter
    rga_errors_total{endpoint, error}                counter (error = the library's error class)
    rga_request_duration_seconds{endpoint}           histogram (le buckets, _sum, _count)
    rga_requests_in_flight                           gauge
    rga_process_resident_memory_bytes                gauge (Linux: /proc/self/statm)
    rga_uptime_seconds                               gauge
"""
from __future__ import annotations

import bisect
import os
import threading
import time
from collections import defaultdict

__all__ = ["Metrics", "BUCKETS", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: latency histogram upper bounds in seconds (+Inf is implied)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def resident_memory_bytes() -> int:
    """Resident set size of this process (0 where /proc is unavailable)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Counters and latency histograms per endpoint (thread-safe)."""

    def __init__(self, endpoints: tuple = ()):
        self._lock = threading.Lock()
        self.requests: dict = defaultdict(int)          # (endpoint, status) -> n
        self.errors: dict = defaultdict(int)            # (endpoint, error) -> n
        self.hist: dict = {}                            # endpoint -> [bucket counts..., +Inf]
        self.sums: dict = defaultdict(float)
        self.in_flight = 0
        self.started = time.time()
        for e in endpoints:
            self.hist[e] = [0] * (len(BUCKETS) + 1)

    def begin(self) -> None:
        with self._lock:
            self.in_flight += 1

    def observe(self, endpoint: str, status: int, seconds: float, error: str | None = None) -> None:
        i = bisect.bisect_left(BUCKETS, seconds)
        with self._lock:
            self.in_flight -= 1
            self.requests[(endpoint, int(status))] += 1
            if error is not None:
                self.errors[(endpoint, error)] += 1
            h = self.hist.get(endpoint)
            if h is None:
                h = self.hist[endpoint] = [0] * (len(BUCKETS) + 1)
            h[i] += 1
            self.sums[endpoint] += seconds

    def render(self) -> str:
        with self._lock:
            req = sorted(self.requests.items())
            err = sorted(self.errors.items())
            hist = {e: list(c) for e, c in sorted(self.hist.items())}
            sums = dict(self.sums)
            inflight = self.in_flight
        out = ["# HELP rga_requests_total Requests served, by endpoint and HTTP status.",
               "# TYPE rga_requests_total counter"]
        out += [f'rga_requests_total{{endpoint="{_label(e)}",status="{s}"}} {n}' for (e, s), n in req]
        out += ["# HELP rga_errors_total Requests answered with an error, by endpoint and error class.",
                "# TYPE rga_errors_total counter"]
        out += [f'rga_errors_total{{endpoint="{_label(e)}",error="{_label(c)}"}} {n}' for (e, c), n in err]
        out += ["# HELP rga_request_duration_seconds Time from request start to response end.",
                "# TYPE rga_request_duration_seconds histogram"]
        for e, counts in hist.items():
            acc = 0
            le = _label(e)
            for b, c in zip(BUCKETS, counts):
                acc += c
                out.append(f'rga_request_duration_seconds_bucket{{endpoint="{le}",le="{b}"}} {acc}')
            acc += counts[-1]
            out.append(f'rga_request_duration_seconds_bucket{{endpoint="{le}",le="+Inf"}} {acc}')
            out.append(f'rga_request_duration_seconds_sum{{endpoint="{le}"}} {sums.get(e, 0.0)!r}')
            out.append(f'rga_request_duration_seconds_count{{endpoint="{le}"}} {acc}')
        out += ["# HELP rga_requests_in_flight Requests being processed.", "# TYPE rga_requests_in_flight gauge",
                f"rga_requests_in_flight {inflight}",
                "# HELP rga_process_resident_memory_bytes Resident memory of the service process.",
                "# TYPE rga_process_resident_memory_bytes gauge",
                f"rga_process_resident_memory_bytes {resident_memory_bytes()}",
                "# HELP rga_uptime_seconds Seconds since the service started.", "# TYPE rga_uptime_seconds gauge",
                f"rga_uptime_seconds {time.time() - self.started:.3f}"]
        return "\n".join(out) + "\n"
