"""The study report: every variant's speed and physics on one page (``python -m report``).

``report.study`` runs models x variants, ``report.figures`` draws the figures (and computes the numbers behind
them), ``report.render`` writes report.md / report.html, ``report.results`` reads, writes and compares results.json.
"""
