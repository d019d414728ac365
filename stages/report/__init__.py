"""The Evaluate stage's report: report.md (markdown.py) and the PNG pictures (render.py)."""
