"""Presentation: report.md with its tables and figures, the CSV exports and the findings page
(index), from the run records on disk and the verdicts of gluon_resnet.analysis."""
