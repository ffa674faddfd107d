"""Helpers for the notebooks and the benchmark, outside the run pipeline: signal
propagation per block (propagation), a block's real graph walked through (dataflow), and
this engine's speed against d2l's reference pipeline (bench)."""
