import sys
import types

import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.plugins import Registry


def test_register_get_aliases_and_case():
    reg = Registry("translator", key="model.translator")

    @reg.register("gsta", aliases=("g",))
    def build():
        return 1

    assert reg.get("gsta") is build and reg.get("GSTA") is build and reg.get("g") is build
    assert "g" in reg and "nope" not in reg and reg.names() == ["gsta"] and len(reg) == 1
    with pytest.raises(ConfigError, match=r"^model\.translator: unknown translator 'nope'; "
                                          r"expected one of gsta \(aliases g=gsta\)"):
        reg.get("nope")


def test_lazy_entries_import_their_module_only_when_looked_up(monkeypatch):
    reg = Registry("quantizer", key="model.quantizer")
    mod = types.ModuleType("fake_quantizer_module")
    imported = []

    def fake_import(name):
        imported.append(name)
        reg.register("vq")(object)
        return mod

    monkeypatch.setattr("importlib.import_module", fake_import)
    reg.register_lazy("vq", "fake_quantizer_module")
    assert "vq" in reg and imported == []
    assert reg.get("vq") is object and imported == ["fake_quantizer_module"]
    reg.get("vq")
    assert imported == ["fake_quantizer_module"]


def test_a_lazy_module_that_does_not_register_is_a_bug_not_a_config_error(monkeypatch):
    reg = Registry("source", key="datasets.*.source")
    monkeypatch.setattr("importlib.import_module", lambda name: sys)
    reg.register_lazy("kth", "sys")
    with pytest.raises(RuntimeError, match="did not register"):
        reg.get("kth")


def test_registering_a_different_object_twice_is_refused():
    reg = Registry("x", key="x")
    reg.register("a")(int)
    reg.register("a")(int)
    with pytest.raises(RuntimeError, match="registered twice"):
        reg.register("a")(float)
