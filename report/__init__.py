"""The study report: every variant's speed and physics on one page (``python -m report``).

The study itself is :mod:`study` (built once, timed, checked; typed results); ``report.study`` runs it for the
report and stamps the schema, ``report.figures`` draws every figure (and computes the numbers behind them),
``report.render`` writes the narrative as blocks of ``report.document`` (rendered as report.md / report.html),
``report.results`` reads, writes and compares results.json.
"""
