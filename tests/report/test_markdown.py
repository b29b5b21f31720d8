import pandas as pd

from pipeline.report.markdown import seed_spread


def _cell(row, column, mean, std, n):
    return {"row": row, "column": column, "ours": mean, "ours_std": std, "n_seeds": n}


def test_seed_spread_says_whether_a_difference_exceeds_the_stds():
    df = pd.DataFrame([
        _cell("SimVP (w/o VQ)", "t2m_mse", 7.0, 0.1, 3),
        _cell("SimVP+SVQ (Frozen)", "t2m_mse", 7.15, 0.1, 3),    # 0.15 < 0.2: within
        _cell("SimVP+SVQ (Learnable)", "t2m_mse", 6.5, 0.1, 3),  # 0.5 > 0.2: exceeds
    ])
    text = seed_spread(1, df)
    assert "t2m: SVQ learnable vs SimVP: 6.5 vs 7 MSE, difference -0.5 exceeds the spread 0.2 (3 seeds)" in text
    assert "t2m: SVQ frozen vs SimVP: 7.15 vs 7 MSE, difference +0.15 is within the spread 0.2" in text


def test_no_seed_spread_reading_with_one_seed():
    df = pd.DataFrame([_cell("SimVP (w/o VQ)", "t2m_mse", 7.0, 0.0, 1),
                       _cell("SimVP+SVQ (Learnable)", "t2m_mse", 6.0, 0.0, 1)])
    assert seed_spread(1, df) is None
