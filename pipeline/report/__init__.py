"""The offline HTML report: reusable sections (``Section``, ``write_report``,
``bertscore_sections``) and the sweep report written by ``python -m pipeline.report``."""

from pipeline.report.bertscore_suite import bertscore_sections
from pipeline.report.html import Section, write_report

__all__ = ["Section", "bertscore_sections", "write_report"]
