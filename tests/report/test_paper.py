"""paper.yaml's schema: the committed file loads, and a broken one is refused in one line naming
the file and the key."""

import pytest
import yaml

from pipeline.core.errors import ConfigError
from pipeline.report.paper import PAPER_YAML, TABLE_NUMBERS, load_paper


def test_the_committed_file_loads_with_every_table():
    tables = load_paper()
    assert sorted(tables) == sorted(TABLE_NUMBERS)
    t1 = tables[1].sections[0]
    assert t1.columns[0].metric and t1.rows[0].kind in ("measured", "reported", "derived")
    assert all(len(r.values) == len(s.columns) for t in tables.values() for s in t.sections for r in s.rows)


def _broken(tmp_path, edit):
    raw = yaml.safe_load(PAPER_YAML.read_text())
    edit(raw["tables"])
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _first_section(tables):
    return tables[1]["sections"][0]


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.pop(5), r"tables \[5\] are missing"),
    (lambda t: _first_section(t)["rows"][0]["values"].append(1.0), r"tables\.1\.sections\.0: row .*one value per column"),
    (lambda t: _first_section(t)["rows"][0].update(values=["x"] * len(_first_section(t)["columns"])),
     r"tables\.1\.sections\.0\.rows\.0\.values\.0: expected a number, got 'x'"),
    (lambda t: _first_section(t)["columns"][0].update(better="up"),
     r"tables\.1\.sections\.0\.columns\.0\.better: expected one of 'lower' or 'higher', got 'up'"),
    (lambda t: _first_section(t)["columns"][0].update(colour="red"),
     r"tables\.1\.sections\.0\.columns\.0\.colour: unknown key"),
    (lambda t: _first_section(t)["rows"][0].update(reported=True, experiment="t2m_simvp"),
     r"tables\.1\.sections\.0\.rows\.0: row .*expected exactly one of reported, experiment"),
    (lambda t: _first_section(t)["columns"].append(dict(_first_section(t)["columns"][0])),
     r"tables\.1\.sections\.0: column keys must be unique"),
])
def test_a_broken_file_names_the_file_and_the_key(tmp_path, edit, message):
    path = _broken(tmp_path, edit)
    with pytest.raises(ConfigError, match=message) as err:
        load_paper(path)
    assert str(err.value).startswith(f"{path}: ")
    assert "\n" not in str(err.value)


def test_derived_rows_must_name_rows_of_their_section(tmp_path):
    def edit(tables):
        for n in TABLE_NUMBERS:
            for s in tables[n]["sections"]:
                for r in s["rows"]:
                    if r.get("derived") == "increase":
                        r["base"] = "no such row"
                        return
    with pytest.raises(ConfigError, match=r"derived row .* refers to unknown rows \['no such row'\]"):
        load_paper(_broken(tmp_path, edit))
