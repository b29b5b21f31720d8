"""Every YAML file the project reads refuses duplicate keys, naming the key, and deep nesting;
params.yaml refuses aliases (a bomb of nested aliases)."""
import time

import pytest

from pipeline.config.load import load_params
from pipeline.core.errors import ConfigError
from pipeline.core.yamlfile import MAX_BYTES, MAX_DEPTH, parse_yaml, read_yaml
from pipeline.report.paper import _parse
from tests.conftest import ROOT


def test_duplicate_key_refused_naming_it():
    with pytest.raises(ConfigError, match=r"duplicate key 't2m_svq' \(first on line 2, again on line 3\)"):
        parse_yaml("experiments:\n  t2m_svq: {dataset: t2m}\n  t2m_svq: {dataset: r}\n")
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        parse_yaml("x: [{a: 1, a: 2}]")
    assert parse_yaml("a: {b: 1}\nc: {b: 2}\n") == {"a": {"b": 1}, "c": {"b": 2}}


def test_params_and_paper_values_loaders_refuse_duplicates(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    bad = tmp_path / "params.yaml"
    bad.write_text(text.replace("\nexperiments:\n", "\nexperiments:\n  t2m_svq: {dataset: t2m, tables: [], set: {}}\n", 1))
    with pytest.raises(ConfigError, match=f"{bad}: .*duplicate key 't2m_svq'"):
        load_params(bad)
    paper = tmp_path / "paper.yaml"
    paper.write_text("tables: {}\ntables: {}\n")
    with pytest.raises(ConfigError, match="duplicate key 'tables'"):
        _parse(paper)


def _bomb(levels: int) -> str:
    """An alias bomb: ``levels`` lines of ten aliases to the line before, 10^levels leaves."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_params_alias_bomb_refused_within_a_second(tmp_path):
    bad = tmp_path / "params.yaml"
    # the bomb where a checked key reaches it: expanded, validation would walk 10^7 values
    bad.write_text(_bomb(7) + (ROOT / "params.yaml").read_text().replace("\nseeds:", "\nseeds: *a6\n_old_seeds:", 1))
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_params(bad)
    assert time.perf_counter() - start < 1.0
    assert str(err.value) == (f"{bad}: line 2: alias *a0 refused; write the value out instead of referring "
                              f"to an anchor (&a0)")


def test_aliases_allowed_only_where_asked():
    text = "a: &cols [x, y]\nb: *cols\n"
    with pytest.raises(ConfigError, match=r"<string>: line 2: alias \*cols refused"):
        parse_yaml(text)
    assert parse_yaml(text, aliases=True) == {"a": ["x", "y"], "b": ["x", "y"]}


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000,  # a RecursionError otherwise
                                  "".join(f"{' ' * i}k{i}:\n" for i in range(MAX_DEPTH + 5))])
def test_deep_nesting_refused_in_one_line(text):
    with pytest.raises(ConfigError, match=rf"^params\.yaml: line \d+: nested deeper than {MAX_DEPTH} levels$"):
        parse_yaml(text, "params.yaml")
    assert parse_yaml("a: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)) is not None


def test_a_file_too_large_to_parse_in_seconds_is_refused(tmp_path):
    big = tmp_path / "params.yaml"
    big.write_text("seeds: [" + ", ".join(["-1"] * (MAX_BYTES // 4 + 1)) + "]\n")  # seconds to parse
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        read_yaml(big)
    assert str(err.value) == (f"{big}: {big.stat().st_size:,} bytes; expected a YAML file of at most "
                              f"{MAX_BYTES:,} bytes")
    assert time.perf_counter() - start < 1.0
    assert read_yaml(ROOT / "params.yaml")["profile"]
