"""Progress of a long stage: log lines with rate and ETA, and the fraction for the scheduler."""
import time


class Progress:
    """Count work done out of `total`; every `every` seconds (and at the end) log and report.

    `log(message)` gets e.g. "EncodeShards: 120.0 of 1000.0 M ids (12%), 45.1 M ids/s, ETA 20 s";
    `report(fraction, message)` is what Luigi's set_progress_percentage / status message take.
    """

    def __init__(self, what, total, unit, log=None, report=None, every=5.0):
        self.what, self.total, self.unit, self.every = what, max(int(total), 1), unit, every
        self.log, self.report = log or (lambda m: None), report or (lambda f, m: None)
        self.done, self.t0 = 0, time.perf_counter()
        self.last = self.t0

    def __call__(self, n):
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            self.emit(now)

    def fraction(self):
        return min(self.done / self.total, 1.0)

    def emit(self, now=None):
        elapsed = (now or time.perf_counter()) - self.t0
        rate = self.done / max(elapsed, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        msg = (f"{self.what}: {self.done / 1e6:,.1f} of {self.total / 1e6:,.1f} M {self.unit} "
               f"({self.fraction():.0%}), {rate / 1e6:,.1f} M {self.unit}/s, ETA {max(eta, 0):,.0f} s")
        self.log(msg)
        self.report(self.fraction(), msg)
