"""The Evaluate stage's report: report.md (markdown.py) and the PNG pictures (render.py)."""
import math
import numbers


def is_finite(x) -> bool:
    """True for a real number (NumPy scalars too) that is not NaN/inf; None and bools are not."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)
