"""Reports from stored records, never training: tables (`tables`), figures (`figures`), the study page and
the one HTML style (`page`), the ablation page (`ablation`), the refinement page (`refine`)."""

from .ablation import write_ablation_report
from .page import default_out, write_report
from .refine import write_refine_report
from .tables import ReportError, StudyData, ZooRef, best_trial, find_trial, load_study, pareto_table, trials_table

__all__ = ["ReportError", "StudyData", "ZooRef", "best_trial", "default_out", "find_trial", "load_study",
           "pareto_table", "trials_table", "write_ablation_report", "write_refine_report", "write_report"]
