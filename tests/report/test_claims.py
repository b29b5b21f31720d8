"""The paper's claims as data: a bad entry is refused in one line naming its key, and the evaluator
turns an entry and a table's cells into checks with the right sign."""

import math

import pandas as pd
import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.schema import parse
from pipeline.report.claims import ClaimSpec, evaluate
from pipeline.report.paper import load_paper

from .test_paper import _broken


def cells(*rows):
    """(section, row, kind, {column: (ours, paper)}) -> a table frame as build_table makes it."""
    better = {"mse": "lower", "ssim": "higher"}
    out = []
    for section, row, kind, values in rows:
        for column, (ours, paper) in values.items():
            out.append({"section": section, "row": row, "kind": kind, "column": column,
                        "column_title": column.upper(), "better": better.get(column, "lower"),
                        "ours": ours, "paper": paper, "paper_recomputed": None})
    return pd.DataFrame(out)


def claim(**kw):
    return parse(ClaimSpec, {"direction": "lower", "claim": "c", **kw}, "claim")


# ---------------------------------------------------------------------------------------------- schema
def test_every_table_of_the_committed_file_claims_something():
    tables = load_paper()
    assert all(t.claims for t in tables.values())
    assert "t2m: SVQ (learnable) lowers MSE vs SimVP" in [c.claim for c in tables[1].claims]
    assert all(t.version.startswith("arXiv:2312.03406v3") for t in tables.values())


@pytest.mark.parametrize("entry, message", [
    ({"kind": "ratio"}, r"^claim\.kind: expected one of .*'change'.*, got 'ratio'$"),
    ({"kind": "value", "row": "a", "column": "mse", "colour": "red"}, r"^claim\.colour: unknown key; expected one of "),
    ({"kind": "value", "row": "a", "column": "mse", "direction": "down"},
     r"^claim\.direction: expected one of 'lower', 'higher' or 'better', got 'down'$"),
    ({"kind": "change", "row": "a", "column": "mse"}, r"^claim: claim 'c': .* needs base or target"),
    ({"kind": "value", "column": "mse"}, r"^claim: claim 'c': no row for the cell"),
    ({"kind": "change", "column": "mse", "base": {"row": "a"}}, r"^claim: claim 'c': no target\.row for the cell"),
    ({"kind": "value", "row": "a", "column": "mse", "claim": "{model} wins"},
     r"^claim: claim '\{model\} wins': unknown placeholder\(s\) \['model'\]"),
    ({"kind": "value", "row": "a", "column": "mse", "summary": "{ours_yes}"}, r"tallies the checks of a claim with 'each'"),
    ({"kind": "best", "column": "mse"}, r"'rows' \(the claimed group\) goes with kind 'best'"),
    ({"kind": "change", "column": "mse", "base": {"row": "a"}, "target": {"rows": "b"}},
     r"^claim\.target\.rows: unknown key; expected one of \['column', 'row', 'section'\]$"),
])
def test_a_bad_claim_is_refused_in_one_line_naming_its_key(entry, message):
    with pytest.raises(ConfigError, match=message) as err:
        claim(**entry)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t[7]["claims"][1].update(direction="down"), r"tables\.7\.claims\.1\.direction: expected one of"),
    (lambda t: t[7]["claims"][0]["base"].update(row="SimVP (L1 loss)"),
     r"tables\.7: claims\.0 names unknown rows \['SimVP \(L1 loss\)'\]"),
    (lambda t: t[6]["claims"][0].update(section="Warm"), r"tables\.6: claims\.0 names unknown sections \['Warm'\]"),
    (lambda t: t[1]["claims"][1].update(column="t2m_rmse"),
     r"tables\.1: claims\.1 names unknown columns \['t2m_rmse'\]"),
])
def test_a_claim_of_paper_yaml_must_name_its_table(tmp_path, edit, message):
    path = _broken(tmp_path, edit)
    with pytest.raises(ConfigError, match=message) as err:
        load_paper(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- evaluator
@pytest.fixture
def df():
    return cells(("", "base", "measured", {"mse": (2.0, 1.0), "ssim": (0.5, 0.8)}),
                 ("", "svq", "measured", {"mse": (1.5, 1.2), "ssim": (0.6, 0.7)}),
                 ("", "vq", "measured", {"mse": (3.0, None), "ssim": (0.4, 0.9)}),
                 ("", "Improvement (%)", "derived", {"mse": (25.0, -20.0), "ssim": (20.0, -12.5)}))


def test_change_is_the_percent_change_from_base_to_target(df):
    [check] = evaluate([claim(kind="change", column="mse", base={"row": "base"}, target={"row": "svq"},
                              claim="svq lowers {column}")], df)
    assert check.claim == "svq lowers MSE"
    assert check.values == {"ours": -25.0, "paper": pytest.approx(20.0)}
    assert (check.verdict("ours"), check.verdict("paper"), check.agrees()) == (True, False, False)


def test_a_higher_claim_holds_for_a_rise(df):
    [check] = evaluate([claim(kind="change", column="ssim", direction="higher", base={"row": "base"},
                              target={"row": "svq"})], df)
    assert check.verdict("ours") is True and check.verdict("paper") is False


def test_difference_and_value(df):
    diff, val = evaluate([claim(kind="difference", row="svq", base={"column": "ssim"}, target={"column": "mse"},
                                unit=" pt"),
                          claim(kind="value", row="Improvement (%)", column="mse", direction="higher")], df)
    assert diff.values == {"ours": pytest.approx(0.9), "paper": pytest.approx(0.5)} and diff.unit == " pt"
    assert val.values == {"ours": 25.0, "paper": -20.0} and val.verdict("paper") is False


def test_improvement_reads_as_the_metrics_change_in_its_better_direction(df):
    mse, ssim = evaluate([claim(kind="improvement", each="cell", row="Improvement (%)", direction="better",
                                claim="SVQ {verb} {column}")], df)
    assert (mse.claim, mse.direction, mse.values) == ("SVQ lowers MSE", "lower", {"ours": -25.0, "paper": 20.0})
    assert (ssim.claim, ssim.direction, ssim.values) == ("SVQ raises SSIM", "higher", {"ours": 20.0, "paper": -12.5})
    assert mse.verdict("ours") and ssim.verdict("ours") and not mse.verdict("paper")


def test_each_row_repeats_over_the_measured_rows_the_claim_does_not_name(df):
    checks = evaluate([claim(kind="change", each="row", column="mse", base={"row": "base"}, claim="{row} lowers MSE",
                             summary="{ours_yes} of {ours_n} ours, {paper_yes} of {paper_n} paper")], df)
    assert [c.claim for c in checks] == ["svq lowers MSE", "vq lowers MSE", "1 of 2 ours, 0 of 1 paper"]
    assert checks[1].values == {"ours": 50.0, "paper": None}
    assert not checks[-1].counted and checks[-1].values == {}


def test_each_section_and_a_cell_of_another_section():
    df = cells(("A", "frozen", "measured", {"mse": (2.0, 2.0)}), ("A", "learnable", "measured", {"mse": (1.0, 1.0)}),
               ("B", "frozen", "measured", {"mse": (4.0, 4.0)}), ("B", "learnable", "measured", {"mse": (5.0, 3.0)}))
    a, b = evaluate([claim(kind="change", each="section", column="mse", base={"row": "frozen"},
                           target={"row": "learnable"}, claim="learnable lowers MSE ({section})")], df)
    assert (a.claim, a.values["ours"], b.claim, b.values["ours"]) == (
        "learnable lowers MSE (A)", -50.0, "learnable lowers MSE (B)", 25.0)
    [cross] = evaluate([claim(kind="change", row="learnable", column="mse", base={"section": "A"},
                              target={"section": "B"})], df)
    assert cross.values == {"ours": 400.0, "paper": 200.0}


def test_best_compares_the_best_of_a_group_with_the_best_of_the_other_rows(df):
    lowest, highest = evaluate([claim(kind="best", rows=["svq"], column="mse"),
                                claim(kind="best", rows=["svq"], column="ssim", direction="higher")], df)
    assert lowest.values == {"ours": -25.0, "paper": pytest.approx(20.0)}   # 1.5 vs min(2, 3); 1.2 vs 1.0
    assert highest.values["ours"] == pytest.approx(20.0)                     # 0.6 vs max(0.5, 0.4)
    assert highest.values["paper"] == pytest.approx((0.7 - 0.9) / 0.9 * 100)


def test_a_missing_or_zero_base_cannot_be_judged(df):
    df.loc[(df["row"] == "base") & (df["column"] == "mse"), "ours"] = 0.0
    [check] = evaluate([claim(kind="change", column="mse", base={"row": "base"}, target={"row": "svq"})], df)
    assert check.values["ours"] is None and check.verdict("ours") is None and check.agrees() is None
    assert not math.isnan(check.values["paper"])
