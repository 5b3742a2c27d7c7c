"""``tinygrad-lab report``: rerun every experiment of the lab report over several seeds and write README.md
with tables, figures and prose answers generated from the numbers.

experiments (what runs) -> runner (a process pool of training runs) -> statistics (cells over seeds) ->
prose and graphs (each section's text, figures and verdicts) -> build (the assembled README.md).
"""

from tinygrad_lab.lab.report.build import build_report
from tinygrad_lab.lab.report.experiments import (
    LAB,
    SECTIONS,
    TASKS,
    Section,
    Settings,
    Variant,
    all_configs,
    settings_for,
)

__all__ = ["build_report", "LAB", "SECTIONS", "TASKS", "Section", "Settings", "Variant", "all_configs", "settings_for"]
