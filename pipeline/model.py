"""ResUNet-1D: a 1D residual U-Net that predicts the fluorescence baseline of a spectrum.

The default ``ResUNet1D()`` follows the network of the seed paper (Analyst, 2022)::

    input  (B, 1, 512)
    stem   Conv1d k3            -> 32 x 512
    enc1   ResDown              -> 48 x 256
    enc2   ResDown              -> 72 x 128
    enc3   ResDown              -> 108 x 64
    enc4   ResDown              -> 162 x 32
    bottom ResDown              -> 243 x 16
    dec1   Up + skip(enc4)      -> 162 x 32
    dec2   Up + skip(enc3)      -> 108 x 64
    dec3   Up + skip(enc2)      -> 72 x 128
    dec4   Up + skip(enc1)      -> 48 x 256
    dec5   Up + skip(stem)      -> 32 x 512
    head   Conv1d k1            -> 1 x 512   (the baseline, normalised units)

Every level halves the length with a strided convolution, so the network is fully
convolutional: any length that is a multiple of ``2 ** len(channels[1:])`` (32 by default)
works. ``UNet1D`` is the plain U-Net ablation (double conv, max-pool, transposed conv,
concatenated skips).

``attention="se"`` (``model.attention``) adds a squeeze-and-excitation unit
(:class:`SqueezeExcite`) to the residual branch of every :class:`ResBlock`, encoder and
decoder, before the shortcut is added, as in SE-ResNet (Hu et al., CVPR 2018, Fig. 3);
``"none"`` builds exactly the network above, with the same parameter names, so checkpoints
saved before the option existed load unchanged.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

SEED_CHANNELS = (32, 48, 72, 108, 162, 243)
ATTENTIONS = ("none", "se")  # pipeline.config's choices for model.attention (a test checks)
SE_REDUCTION = 8  # channels / hidden units of a squeeze-and-excitation unit...
SE_MIN_HIDDEN = 4  # ...but never fewer than this many hidden units


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: rescale each channel by a gate computed from all channels.

    ``s = sigmoid(W2 relu(W1 mean_L(h)))``, then ``h * s``: the mean over the length
    (squeeze) of ``h`` ``(B, C, L)`` gives ``(B, C)``; two fully connected layers,
    ``C -> max(SE_MIN_HIDDEN, C // SE_REDUCTION) -> C`` (excitation), give one gate in (0, 1)
    per channel and spectrum. It lets a block weight its channels by what the whole spectrum
    holds (tall bands, a steep background), which a convolution's local window cannot see.

    Parameters
    ----------
    channels
        ``C``, the channels of the feature map gated.

    References
    ----------
    J. Hu, L. Shen, G. Sun, "Squeeze-and-excitation networks", CVPR 2018.
    """

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(SE_MIN_HIDDEN, channels // SE_REDUCTION)
        self.squeeze = nn.Linear(channels, hidden)
        self.excite = nn.Linear(hidden, channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Gate ``h`` ``(B, C, L)``; the same shape back."""
        s = h.mean(dim=-1)  # (B, C): any length, so the network stays fully convolutional
        s = torch.sigmoid(self.excite(torch.relu(self.squeeze(s))))  # (B, C)
        return h * s.unsqueeze(-1)  # (B, C, L)


class ResBlock(nn.Module):
    """Two Conv1d + BatchNorm layers with a shortcut; ``stride=2`` halves the length.

    ``attention="se"``: a :class:`SqueezeExcite` gates the residual branch before the
    shortcut is added (SE-ResNet); ``"none"`` builds no such module. ``dropout`` > 0 adds
    channel dropout (:class:`torch.nn.Dropout1d`) between the two convolutions, the place
    Zagoruyko & Komodakis (BMVC 2016) put it in a residual block, for MC dropout
    (:mod:`pipeline.uncertainty`); 0 builds no layer, today's block exactly.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int = 1,
        attention: str = "none",
        dropout: float = 0.0,
    ):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.relu = nn.ReLU(inplace=True)
        if dropout > 0:
            self.drop = nn.Dropout1d(dropout)
        if c_in == c_out and stride == 1:
            self.shortcut = nn.Identity()
        else:  # a 1x1 projection so the shortcut matches channels and length
            self.shortcut = nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)
            )
        self.se = SqueezeExcite(c_out) if _attention(attention) == "se" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = self.relu(self.bn1(self.conv1(x)))
        if hasattr(self, "drop"):
            h = self.drop(h)
        h = self.bn2(self.conv2(h))
        if self.se is not None:
            h = self.se(h)
        return self.relu(h + self.shortcut(x))


class Up(nn.Module):
    """Double the length with a transposed convolution, join the skip, refine with ``block``.

    ResUNet-1D refines residually (:class:`ResBlock`, transposed kernel 4); the plain U-Net
    with :class:`DoubleConv` after a transposed kernel of 2.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        block: type | None = None,
        up_kernel: int = 4,
        attention: str = "none",
    ):
        super().__init__()
        pad = (up_kernel - 2) // 2
        self.up = nn.ConvTranspose1d(c_in, c_out, up_kernel, stride=2, padding=pad)
        self.block = (block or partial(ResBlock, attention=attention))(2 * c_out, c_out, kernel)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.up(x)  # (B, c_out, 2L)
        return self.block(torch.cat([x, skip], dim=1))  # (B, c_out, 2L)


class EncoderDecoder(nn.Module):
    """The U shape both networks share.

    A stem, levels down (each halving the length), levels up (each doubling it and joining
    the skip of its level) and a 1x1 head to the baseline. Subclasses build ``stem``,
    ``down``, ``up`` and ``head`` from ``channels``.
    """

    channels: tuple[int, ...]

    @property
    def length_multiple(self) -> int:
        """Input lengths must be a multiple of this."""
        return 2 ** (len(self.channels) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map spectra ``(B, 1, L)`` to baselines ``(B, 1, L)``, both in normalised units."""
        h = self.stem(x)  # (B, 32, L)
        skips = []
        for down in self.down:
            skips.append(h)
            h = down(h)  # (B, C_next, L / 2^k); the last is the bottleneck (B, 243, L/32)
        for up, skip in zip(self.up, reversed(skips), strict=True):
            h = up(h, skip)  # back up to (B, 32, L)
        return self.head(h)  # (B, 1, L)


class ResUNet1D(EncoderDecoder):
    """ResUNet-1D baseline estimator.

    Parameters
    ----------
    channels
        Channels of the stem, then of each downsampling level; the last is the bottleneck.
    enc_kernel, dec_kernel
        Convolution kernel sizes of the encoder and decoder residual blocks.
    attention
        ``"none"`` (the seed's network) or ``"se"`` (:class:`SqueezeExcite` in every block).
    dropout
        Channel dropout rate in every residual block (:class:`ResBlock`); 0: none.

    Raises
    ------
    ValueError
        ``attention`` is not one of :data:`ATTENTIONS`.

    References
    ----------
    ResUNet-1D for Raman baseline correction, Analyst (2022).
    J. Hu, L. Shen, G. Sun, "Squeeze-and-excitation networks", CVPR 2018 (``attention="se"``).
    """

    def __init__(
        self,
        channels: tuple[int, ...] = SEED_CHANNELS,
        enc_kernel: int = 7,
        dec_kernel: int = 5,
        attention: str = "none",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.channels = tuple(channels)
        self.stem = nn.Conv1d(1, channels[0], 3, padding=1)
        self.down = nn.ModuleList(
            ResBlock(c_in, c_out, enc_kernel, stride=2, attention=attention, dropout=dropout)
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        block = partial(ResBlock, attention=attention, dropout=dropout)
        self.up = nn.ModuleList(
            Up(c_in, c_out, dec_kernel, block=block)
            for c_in, c_out in zip(channels[:0:-1], channels[-2::-1], strict=True)
        )
        self.head = nn.Conv1d(channels[0], 1, 1)


class DoubleConv(nn.Module):
    """(Conv1d + BatchNorm + ReLU) twice, the plain U-Net's block."""

    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__()
        pad = kernel // 2
        self.net = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, padding=pad, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net(x)


class UNet1D(EncoderDecoder):
    """Plain 1D U-Net, the ablation: max-pool down, transposed conv up, concatenated skips."""

    def __init__(self, channels: tuple[int, ...] = SEED_CHANNELS, kernel: int = 7):
        super().__init__()
        self.channels = tuple(channels)
        self.stem = DoubleConv(1, channels[0], kernel)
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool1d(2), DoubleConv(c_in, c_out, kernel))
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        self.up = nn.ModuleList(
            Up(c_in, c_out, kernel, block=DoubleConv, up_kernel=2)
            for c_in, c_out in zip(channels[:0:-1], channels[-2::-1], strict=True)
        )
        self.head = nn.Conv1d(channels[0], 1, 1)


def build_model(
    arch: str = "resunet",
    channels: tuple[int, ...] = SEED_CHANNELS,
    enc_kernel: int = 7,
    dec_kernel: int = 5,
    attention: str = "none",
    dropout: float = 0.0,
) -> nn.Module:
    """Build the network named in ``params.yaml`` (``model.arch``, ``attention``, ``dropout``).

    Raises
    ------
    ValueError
        An unknown ``arch`` or ``attention``, or ``attention="se"`` or ``dropout`` with
        ``arch="unet"`` (the plain U-Net ablation has no residual blocks to put them in).
    """
    if arch == "resunet":
        return ResUNet1D(tuple(channels), enc_kernel, dec_kernel, attention, dropout)
    if dropout > 0:
        raise ValueError("model.dropout: only the resunet network has dropout")
    if arch == "unet":
        if _attention(attention) != "none":
            raise ValueError("model.attention: se needs model.arch: resunet (the U-Net has none)")
        return UNet1D(tuple(channels), enc_kernel)
    raise ValueError(f"model.arch: expected 'resunet' or 'unet', got {arch!r}")


def _attention(attention: str) -> str:
    if attention not in ATTENTIONS:
        raise ValueError(
            f"model.attention: expected one of {', '.join(ATTENTIONS)}, got {attention!r}"
        )
    return attention


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
