"""What every registered quantizer shares: its settings schema's base and the forward contract."""
from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from pipeline.core.schema import PositiveInt, Settings, parse, parse_value


def settings_key(name: str) -> str:
    """The params.yaml block holding quantizer ``name``'s settings (SVQ, the paper's, is top-level)."""
    return "svq" if name == "svq" else f"quantizers.{name}"


class Quantizer(nn.Module, abc.ABC):
    """Base of every registered quantizer.

    Contract: ``forward(z)`` maps a latent (B, C, H, W) to ``(z_q, aux_loss)`` with ``z_q`` of the
    same shape and ``aux_loss`` a scalar tensor (zero when the method has none), to be added to the
    training loss. ``diagnostics(z)`` returns plain floats computed on a sample batch without
    gradients and without changing the quantizer's state.

    Subclasses set ``name`` and ``Settings`` (a :class:`pipeline.core.schema.Settings` declaring every
    accepted setting with its default, the one place it lives) and implement ``forward`` and
    ``_diagnostics``.
    """

    name: ClassVar[str] = ""
    Settings: ClassVar[type[Settings]] = Settings  # none accepted

    def __init__(self, dim: int, settings: Settings | Mapping[str, Any] | None = None):
        super().__init__()
        self.dim = parse_value(PositiveInt, dim, f"quantizer {self.name!r}: dim")
        self.settings = self.parse_settings(settings)

    @classmethod
    def parse_settings(cls, settings: Settings | Mapping[str, Any] | None) -> Settings:
        """``settings`` validated, defaults filled in; errors name ``svq.<key>`` or
        ``quantizers.<name>.<key>``."""
        if isinstance(settings, cls.Settings):
            return settings
        return parse(cls.Settings, {} if settings is None else settings, settings_key(cls.name))

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
