"""Executors beyond the default in-process one (runner.Sequential).

- `local.LocalPool`: independent runs side by side on one machine, one process per GPU, or
  N CPU processes, all writing the same store under the same per-run locks.
- `ray_executor.RayExecutor`: each pending run as a Ray task on an existing cluster (or a
  local Ray instance); records come back to the driver, which writes the store. Ray is
  optional and imported only there.
"""
