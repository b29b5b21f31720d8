"""Every YAML file the project reads refuses duplicate keys, naming the key."""
import pytest

from pipeline.config.load import load_params
from pipeline.core.errors import ConfigError
from pipeline.core.yamlfile import parse_yaml
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
