"""SimVP (OpenSTL): conv encoder -> translator -> conv decoder, with a slot for a quantizer.

``model.target`` says whether the decoder predicts the frames (the paper) or a correction to a
simple forecast from the inputs (``pipeline.models.target``).

The quantizer sits between encoder and translator (``position="pre"``, the paper's default) or
after the translator (``"post"``). The decoder's skip connection takes the first encoder layer's
output, never the quantized latent, as in the public SVQ code.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.init import trunc_normal_

from pipeline.core.schema import Settings
from pipeline.models.padding import GridPad
from pipeline.models.quantizers import build_quantizer
from pipeline.models.settings import ModelSettings
from pipeline.models.target import LinearSkip
from pipeline.models.translators import build_translator


def sampling_generator(n: int, reverse: bool = False) -> list[bool]:
    """Stride 2 on every second layer (OpenSTL's rule), mirrored for the decoder."""
    samplings = [False, True] * (n // 2)
    return list(reversed(samplings[:n])) if reverse else samplings[:n]


class ConvSC(nn.Module):
    """Conv -> GroupNorm(2) -> SiLU; stride-2 down, or conv to 4C + PixelShuffle(2) up."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, down: bool = False, up: bool = False):
        super().__init__()
        stride = 2 if down else 1
        padding = (kernel - stride + 1) // 2
        if up:
            self.conv = nn.Sequential(nn.Conv2d(c_in, c_out * 4, kernel, 1, padding), nn.PixelShuffle(2))
        else:
            self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding)
        self.norm = nn.GroupNorm(2, c_out)
        self.act = nn.SiLU(inplace=True)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Conv2d):
            trunc_normal_(m.weight, std=0.02)
            nn.init.constant_(m.bias, 0)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class Encoder(nn.Module):
    def __init__(self, c_in: int, c_hid: int, n_s: int, kernel: int):
        super().__init__()
        s = sampling_generator(n_s)
        self.enc = nn.ModuleList([ConvSC(c_in, c_hid, kernel, down=s[0])] +
                                 [ConvSC(c_hid, c_hid, kernel, down=d) for d in s[1:]])

    def forward(self, x):
        enc1 = self.enc[0](x)
        latent = enc1
        for layer in self.enc[1:]:
            latent = layer(latent)
        return latent, enc1


class Decoder(nn.Module):
    def __init__(self, c_hid: int, c_out: int, n_s: int, kernel: int):
        super().__init__()
        s = sampling_generator(n_s, reverse=True)
        self.dec = nn.ModuleList([ConvSC(c_hid, c_hid, kernel, up=u) for u in s])
        self.readout = nn.Conv2d(c_hid, c_out, 1)

    def forward(self, hid, enc1):
        for layer in self.dec[:-1]:
            hid = layer(hid)
        return self.readout(self.dec[-1](hid + enc1))


class SimVP(nn.Module):
    """Maps (B, T_in, C, H, W) to (B, T_in, C, H, W) plus the quantizer's auxiliary loss.

    ``forecast`` rolls it out to any T_out as OpenSTL does (truncate, or feed back predictions).
    """

    def __init__(self, in_shape: tuple[int, int, int, int], cfg: ModelSettings,
                 quantizer_settings: Settings | Mapping[str, Any] | None = None):
        super().__init__()
        T, C, H, W = in_shape
        factor = 2 ** (cfg.N_S // 2)
        self.grid_pad = GridPad(H, W, factor, cfg.pad)  # any grid: padded in, cropped out
        Hp, Wp = self.grid_pad.padded
        self.in_shape = in_shape
        self.latent_shape = (cfg.hid_S, Hp // factor, Wp // factor)
        self.enc = Encoder(C, cfg.hid_S, cfg.N_S, cfg.spatio_kernel_enc)
        self.hid = build_translator(cfg.translator, in_channels=T * cfg.hid_S, hidden=cfg.hid_T,
                                    depth=cfg.N_T, input_resolution=self.latent_shape[1:],
                                    drop_path=cfg.drop_path, mlp_ratio=cfg.mlp_ratio)
        self.dec = Decoder(cfg.hid_S, C, cfg.N_S, cfg.spatio_kernel_dec)
        self.quantizer = build_quantizer(cfg.quantizer, cfg.hid_S, quantizer_settings)
        self.position = cfg.quantizer_position
        if cfg.target == "auto":
            raise ValueError("model.target 'auto' must be resolved for a dataset first (pipeline.models.target.resolve)")
        self.target = cfg.target
        self.linear = LinearSkip(T, C) if cfg.target == "linear" else None
        if cfg.target != "frames":  # start as the simple forecast itself: the network learns the correction
            nn.init.zeros_(self.dec.readout.weight)
            nn.init.zeros_(self.dec.readout.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, C, H, W = x.shape
        embed, skip = self.enc(self.grid_pad.pad(x.reshape(B * T, C, H, W)))
        _, C_, H_, W_ = embed.shape
        aux = embed.new_zeros(())
        if self.position == "pre":
            embed, aux = self.quantizer(embed)
        hid = self.hid(embed.reshape(B, T * C_, H_, W_)).reshape(B * T, C_, H_, W_)
        if self.position == "post":
            hid, aux = self.quantizer(hid)
        y = self.grid_pad.crop(self.dec(hid, skip)).reshape(B, T, C, H, W)
        if self.target == "residual":
            y = y + x[:, -1:]
        elif self.target == "linear":
            y = y + self.linear(x)
        return y, aux

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The tensor the quantizer sees for input ``x`` (for diagnostics): the encoder output
        (``pre``) or the translator output of the unquantized encoder output (``post``)."""
        B, T, C, H, W = x.shape
        embed, _ = self.enc(self.grid_pad.pad(x.reshape(B * T, C, H, W)))
        if self.position == "post":
            _, C_, H_, W_ = embed.shape
            embed = self.hid(embed.reshape(B, T * C_, H_, W_)).reshape(B * T, C_, H_, W_)
        return embed

    def forecast(self, x: torch.Tensor, t_out: int) -> tuple[torch.Tensor, torch.Tensor]:
        t_in = x.shape[1]
        if t_out == t_in:
            return self(x)
        if t_out < t_in:
            y, aux = self(x)
            return y[:, :t_out], aux
        preds, auxes, cur = [], [], x
        for _ in range(-(-t_out // t_in)):  # ceil: feed each prediction back as the next input
            cur, aux = self(cur)
            preds.append(cur)
            auxes.append(aux)
        return torch.cat(preds, dim=1)[:, :t_out], torch.stack(auxes).mean()
