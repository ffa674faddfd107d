"""From experiment definitions to runs on disk: experiments and their grids (experiment),
what each run needs (plan), time estimates (estimate), the per-run job protocol (jobs),
the executors that train (executors/), and the lifecycle that ties them (runner)."""
