"""`rerankgraph report`: runs compared in one self-contained HTML file (summary table,
paired significance, per-query wins and losses, cost against quality, a drill-down per
query and, when given, the LLM labels' agreement with the qrels)."""

from rerankgraph.report.build import ReportOutcome, ReportSettings, build_report

__all__ = ["ReportOutcome", "ReportSettings", "build_report"]
