import pandas as pd

from pipeline.report.markdown import verdict_line


def test_the_report_opens_with_the_verdict_counts():
    claims = pd.DataFrame({"table": [1, 1, 5], "verdict": ["holds", "inconclusive", "reversed"]})
    line = verdict_line(claims, "tables/claims.csv")
    assert line.startswith("**The paper's claims on these runs:** 3 tested: 1 hold, 1 reversed, 1 inconclusive")
    assert line.endswith("[tables/claims.csv](tables/claims.csv)).")
    assert verdict_line(claims.iloc[:0]) is None and verdict_line(None) is None
