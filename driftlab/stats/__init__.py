"""Statistics of driftlab's verdicts: seeded resampling intervals with a named method.

:func:`two_level_bootstrap` resamples folds and then test items within
folds (paired: one resample serves every quantity); :func:`percentile_interval`
turns replicates into intervals; :func:`paired_interval` gives the interval
of a mean of paired per-fold differences (Student t or paired bootstrap).
Sources: Efron and Tibshirani, "An Introduction to the Bootstrap", 1993;
Davison and Hinkley, "Bootstrap Methods and their Application", 1997,
Sec. 3.8; Student, Biometrika 6, 1908.
"""

from driftlab.stats.bootstrap import BOOTSTRAP_METHOD, percentile_interval, two_level_bootstrap
from driftlab.stats.paired import INTERVAL_METHODS, paired_interval

__all__ = [
    "BOOTSTRAP_METHOD",
    "INTERVAL_METHODS",
    "paired_interval",
    "percentile_interval",
    "two_level_bootstrap",
]
