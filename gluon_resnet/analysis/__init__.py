"""The decision engine: run records -> groups of seeds (groups) -> statistics (stats) -> the
declared analysis and its verdicts (decide, sequential, signtest, collapse, power), decided
from a results folder under its locked plan (plan, verdicts). Values in, verdicts out:
numpy, scipy and statsmodels only, never MXNet. reporting/ presents what this decides."""
