"""From run records on disk to reports: groups of seeds (groups), statistics (stats),
figures (plots), and report.md with the results index (report)."""
