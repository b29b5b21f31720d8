"""What every registered quantizer shares: settings resolution, validation, the forward contract."""
from __future__ import annotations

import abc
import copy
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from pipeline.errors import ConfigError


class Quantizer(nn.Module, abc.ABC):
    """Base of every registered quantizer.

    Contract: ``forward(z)`` maps a latent (B, C, H, W) to ``(z_q, aux_loss)`` with ``z_q`` of the
    same shape and ``aux_loss`` a scalar tensor (zero when the method has none), to be added to the
    training loss. ``diagnostics(z)`` returns plain floats computed on a sample batch without
    gradients and without changing the quantizer's state.

    Subclasses set ``name`` and ``defaults`` (every accepted setting with its default value) and
    implement ``forward`` and ``_diagnostics``.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, dim: int, settings: Mapping[str, Any] | None = None):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ConfigError(f"quantizer {self.name!r}: dim must be a positive integer, got {dim!r}")
        self.dim = dim
        self.settings = self.resolve_settings(settings)

    @classmethod
    def resolve_settings(cls, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        """``defaults`` overridden by ``settings``; a key not in ``defaults`` is a ConfigError."""
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"quantizer {cls.name!r}: settings must be a mapping, got {type(settings).__name__}")
        unknown = sorted(set(settings) - set(cls.defaults))
        if unknown:
            raise ConfigError(f"quantizer {cls.name!r}: unknown setting {unknown[0]!r}; "
                              f"accepted settings: {sorted(cls.defaults)}")
        merged = copy.deepcopy(cls.defaults)
        merged.update(copy.deepcopy(dict(settings)))
        return merged

    # -- validation of resolved settings; errors name the quantizer and the key ------------------
    def _bad(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"quantizer {self.name!r}: setting {key!r} must be {expected}, "
                           f"got {self.settings[key]!r}")

    def _int(self, key: str, minimum: int = 1) -> int:
        value = self.settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._bad(key, f"an integer >= {minimum}")
        return value

    def _float(self, key: str, minimum: float = 0.0, strict: bool = False) -> float:
        value = self.settings[key]
        ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
              and (value > minimum if strict else value >= minimum))
        if not ok:
            raise self._bad(key, f"a finite number {'>' if strict else '>='} {minimum}")
        return float(value)

    def _bool(self, key: str) -> bool:
        value = self.settings[key]
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def _choice(self, key: str, choices: tuple) -> Any:
        value = self.settings[key]
        if value not in choices:
            raise self._bad(key, f"one of {list(choices)}")
        return value

    def _power_of_two(self, key: str) -> int:
        value = self._int(key)
        if value & (value - 1):
            raise self._bad(key, f"a power of two (e.g. {1 << (value - 1).bit_length()})")
        return value

    # -- shape helpers ---------------------------------------------------------------------------
    def tokens(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, H*W, C): one token per spatial position."""
        if z.dim() != 4 or z.shape[1] != self.dim:
            raise ValueError(f"quantizer {self.name!r} expects (B, {self.dim}, H, W), got {tuple(z.shape)}")
        b, c, h, w = z.shape
        return z.permute(0, 2, 3, 1).reshape(b, h * w, c)

    @staticmethod
    def untokens(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        b, c, h, w = shape
        return t.reshape(b, h, w, c).permute(0, 3, 1, 2)

    # -- diagnostics -----------------------------------------------------------------------------
    def diagnostics(self, z: torch.Tensor) -> dict[str, float]:
        """Code-usage statistics on the sample batch ``z``, as plain floats."""
        with torch.no_grad():
            values = self._diagnostics(z)
        return {key: float(value) for key, value in values.items()}

    @abc.abstractmethod
    def _diagnostics(self, z: torch.Tensor) -> Mapping[str, float | torch.Tensor]:
        """Each quantizer's own statistics (run under no_grad)."""

    def extra_repr(self) -> str:
        return f"dim={self.dim}, settings={self.settings}"


class IdentityQuantizer(Quantizer):
    """``none``: the latent passes unchanged (the SimVP baseline)."""

    name = "none"
    defaults: ClassVar[dict[str, Any]] = {}

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.tokens(z)  # shape check only
        return z, z.new_zeros(())

    def _diagnostics(self, z: torch.Tensor) -> dict[str, float]:
        return {}
