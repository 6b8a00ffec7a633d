"""Metrics (scikit-learn) and reports (the paper's Table 1 layout)."""
from maan.evaluation.metrics import METRICS, binary_metrics, summarize
from maan.evaluation.report import format_cv_summary, format_table1, write_table1

__all__ = ["METRICS", "binary_metrics", "format_cv_summary", "format_table1", "summarize",
           "write_table1"]
