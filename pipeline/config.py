"""Typed parameters, loaded from ``params.yaml``, the project's only configuration.

Every section of ``params.yaml`` maps onto a frozen dataclass below. Loading checks every value
before any work starts: a wrong type, a negative count, an unknown key, an empty/inverted
range, bin edges out of order or a key given twice in the file raises :class:`ConfigError`
(:mod:`pipeline.params_check`) naming the key (``simulate.peaks.count``) and what was expected.
The defaults live in ``params.yaml`` only: the dataclasses here have none, so a missing key is
an error too.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.params_check import ConfigError, read_yaml, sequence_checks

# "empirical" last: the codes of the others (stored in every set) stay what they were
BASELINE_FAMILIES = ("spline", "polynomial", "exponential", "hump", "step", "sum", "empirical")
PEAK_SHAPES = ("hann", "gaussian", "lorentzian", "pseudo_voigt")
NORMALISATIONS = ("minmax", "envelope")  # pipeline.normalise.NORMALISATIONS (a test checks)
ATTENTIONS = ("none", "se")  # pipeline.model.ATTENTIONS (a test checks)


# params.yaml's optional top-level mapping of named overlays (``--profile full``)
PROFILES = "profiles"

# keys params.yaml no longer has, and what took their place (issue 12: a budget in spectra)
RETIRED = {
    "train.epochs": "the budget is counted in spectra: train.samples",
    "train.lr_step": "the learning rate warms up, then decays on a cosine: train.warmup",
    "train.lr_gamma": "the learning rate warms up, then decays on a cosine: train.warmup",
    "student.epochs": "the student's budget is counted in spectra: student.samples",
    "student.lr_step": "the student follows train's warm-up and cosine decay",
}


def _spec(**checks: Any) -> Any:
    """Declare a field with checks: ``min``, ``max``, ``odd``, ``choices``, ``range``, ``keys``.

    And ``increasing`` for a whole list (:func:`pipeline.params_check.sequence_checks`).
    """
    return field(metadata=checks)


@dataclass(frozen=True)
class BaselineParams:
    """Fluorescence background families and their mixture weights."""

    families: dict[str, float] = _spec(keys=BASELINE_FAMILIES, min=0.0)
    anchors: tuple[int, int] = _spec(range=True, min=2)  # spline anchor count, inclusive
    poly_degree: tuple[int, int] = _spec(range=True, min=1)
    decay: tuple[float, float] = _spec(range=True, min=0.0)  # exp decay length / span
    hump_width: tuple[float, float] = _spec(range=True, min=0.0)  # hump sigma / span
    step_width: tuple[float, float] = _spec(range=True, min=0.0)  # step width / span
    warp: tuple[float, float] = _spec(range=True, min=0.05)  # empirical: axis-warp exponent
    crop: tuple[float, float] = _spec(range=True, min=0.05, max=1.0)  # empirical: window / axis
    edge_fraction: float = _spec(min=0.0, max=1.0)  # spectra with a filter edge at the low end
    edge_width: tuple[float, float] = _spec(range=True, min=0.005, max=0.5)  # edge / axis
    edge_cutoff: float = _spec(min=0.0, max=1.0)  # share of edges that cut off (others rise)
    edge_rise: tuple[float, float] = _spec(range=True, min=0.0)  # rise height, baseline ranges


@dataclass(frozen=True)
class PeakParams:
    """Raman bands: count, shape mixture, width (FWHM, points) and relative amplitude."""

    shapes: dict[str, float] = _spec(keys=PEAK_SHAPES, min=0.0)
    count: tuple[int, int] = _spec(range=True, min=0)
    width: tuple[float, float] = _spec(range=True, min=1e-3)
    amplitude: tuple[float, float] = _spec(range=True, min=0.0)
    ratio: tuple[float, float] = _spec(range=True, min=1e-6)  # tallest band / baseline range
    tall_fraction: float = _spec(min=0.0, max=1.0)  # spectra whose ratio is drawn from tall_ratio
    tall_ratio: tuple[float, float] = _spec(range=True, min=1e-6)  # log-uniform, like ratio
    dense_fraction: float = _spec(min=0.0, max=1.0)  # spectra with dense_count bands, clustered
    dense_count: tuple[int, int] = _spec(range=True, min=1)  # inclusive
    dense_clusters: tuple[int, int] = _spec(range=True, min=1)  # clusters per spectrum, inclusive
    dense_spread: tuple[float, float] = _spec(range=True, min=1e-4, max=1.0)  # sigma / axis
    broad_fraction: float = _spec(min=0.0, max=1.0)  # spectra with broad bands (water, glass)
    broad_count: tuple[int, int] = _spec(range=True, min=1)  # inclusive
    broad_width: tuple[float, float] = _spec(range=True, min=1e-3)  # FWHM, points, log-uniform


@dataclass(frozen=True)
class NoiseParams:
    """Read noise, shot noise and cosmic-ray spikes, in baseline-range units."""

    read: tuple[float, float] = _spec(range=True, min=0.0)
    shot: tuple[float, float] = _spec(range=True, min=0.0)
    cosmic_ray_prob: float = _spec(min=0.0, max=1.0)
    cosmic_ray_height: tuple[float, float] = _spec(range=True, min=0.0)
    range_fraction: float = _spec(min=0.0, max=1.0)  # spectra whose noise is range_sigma...
    range_sigma: tuple[float, float] = _spec(range=True, min=1e-7)  # ...x their range, log-unif.


@dataclass(frozen=True)
class IntensityParams:
    """Random intensity scale (log-uniform) and offset (in units of the scale).

    A fraction ``flat_fraction`` of the spectra sit on a flat fluorescence level of
    ``flat_level`` baseline ranges (log-uniform) added to the offset; its shot noise counts.
    """

    scale: tuple[float, float] = _spec(range=True, min=1e-12)
    offset: tuple[float, float] = _spec(range=True)
    flat_fraction: float = _spec(min=0.0, max=1.0)
    flat_level: tuple[float, float] = _spec(range=True, min=1e-6)  # baseline ranges, log-uniform


@dataclass(frozen=True)
class SimulateParams:
    """The simulated train/val/test sets."""

    seed: int = _spec(min=0)
    length: int = _spec(min=32)
    n_train: int = _spec(min=1)
    n_val: int = _spec(min=1)
    n_test: int = _spec(min=1)
    baseline: BaselineParams = _spec()
    peaks: PeakParams = _spec()
    noise: NoiseParams = _spec()
    intensity: IntensityParams = _spec()


@dataclass(frozen=True)
class ModelParams:
    """The network: ``resunet`` (the seed's ResUNet-1D) or ``unet`` (the plain ablation).

    ``normalisation``: how its input is scaled (:mod:`pipeline.normalise`); a model saved
    before the key existed is ``minmax``. ``attention``: ``none`` (the seed's network) or
    ``se`` (squeeze-and-excitation in every residual block, :mod:`pipeline.model`;
    ``docs/ablation.md``); a model saved before the key existed is ``none``. ``dropout``:
    channel dropout in the residual blocks (0: none, the network as before); ``mc_samples`` >
    0 exports it with a per-point standard deviation of the baseline from that many
    MC-dropout passes (:mod:`pipeline.uncertainty`, ``docs/uncertainty.md``; needs
    ``dropout`` > 0). A model saved before these keys has 0.
    """

    arch: str = _spec(choices=("resunet", "unet"))
    channels: tuple[int, ...] = _spec(min=1)
    enc_kernel: int = _spec(min=1, odd=True)  # odd: "same" padding keeps the length
    dec_kernel: int = _spec(min=1, odd=True)
    normalisation: str = _spec(choices=NORMALISATIONS)
    attention: str = _spec(choices=ATTENTIONS)
    dropout: float = _spec(min=0.0, max=0.9)  # channel dropout rate in every residual block
    mc_samples: int = _spec(min=0)  # MC-dropout passes behind baseline_std; 0: no uncertainty


@dataclass(frozen=True)
class TrainParams:
    """The stream of simulated training spectra, AdamW and its warm-up + cosine schedule.

    The budget is counted in spectra (``samples``), not epochs: every step draws fresh
    spectra from the seeded stream (:mod:`pipeline.stream`), ``docs/training.md``.
    """

    seed: int = _spec(min=0)
    precision: str = _spec(choices=("auto", "fp32", "bf16"))  # auto: bf16 where native
    threads: int = _spec(min=0)  # 0: all cores
    workers: int = _spec(min=0)  # simulation processes feeding the stream; 0: in-process
    samples: int = _spec(min=1)  # training spectra in all, the budget
    batch_size: int = _spec(min=1)
    lr: float = _spec(min=0.0)  # peak learning rate, reached at the end of the warm-up
    weight_decay: float = _spec(min=0.0)  # AdamW's decoupled weight decay
    warmup: float = _spec(min=0.0, max=1.0)  # fraction of samples in linear warm-up
    eval_every: int = _spec(min=1)  # spectra between validation passes (and one at the end)
    smoothness: float = _spec(
        min=0.0
    )  # second-difference penalty's weight (pipeline.train); 0: off


@dataclass(frozen=True)
class ClassicalMethodParams:
    """A pybaselines Whittaker method: its ``lam`` grid (log10) and iteration limits."""

    log10_lam: tuple[float, ...] = _spec()
    max_iter: int = _spec(min=1)
    tol: float = _spec(min=0.0)


@dataclass(frozen=True)
class ClassicalParams:
    """arPLS and asPLS, with ``lam`` chosen on the validation set."""

    arpls: ClassicalMethodParams = _spec()
    aspls: ClassicalMethodParams = _spec()
    n_val_grid: int = _spec(min=1)  # validation spectra used to choose lam
    n_jobs: int = _spec(min=0)  # 0: all cores
    dask_from: int = _spec(min=0)  # fits (spectra x lam values) run on Dask from here; 0: never
    scheduler: str = _spec()  # tcp://HOST:PORT of an existing Dask cluster; "": a local one


@dataclass(frozen=True)
class EvaluateParams:
    """Evaluation on the test set."""

    batch_size: int = _spec(min=1)
    noise_bins: tuple[float, ...] = _spec(min=0.0, increasing=True)  # read-noise bin edges


@dataclass(frozen=True)
class StudentParams:
    """The fast variant: a narrower ResUNet-1D, trained like ``train`` on its own budget."""

    channels: tuple[int, ...] = _spec(min=1)
    samples: int = _spec(min=1)  # training spectra, in place of train.samples
    max_rmse_ratio: float = _spec(min=1.0)  # registered only within this x the fp32 model's RMSE


@dataclass(frozen=True)
class DenoiseParams:
    """The denoiser (:mod:`pipeline.denoiser`): its layers and its training on simulated spectra."""

    width: int = _spec(min=1)  # channels of the hidden layers
    dilations: tuple[int, ...] = _spec(min=1)  # one dilated 3-point convolution per value
    seed: int = _spec(min=0)  # the denoiser's stream and initialisation
    samples: int = _spec(min=1)  # training spectra in all
    batch_size: int = _spec(min=1)
    lr: float = _spec(min=0.0)  # peak learning rate (AdamW), warm-up then cosine
    weight_decay: float = _spec(min=0.0)
    warmup: float = _spec(min=0.0, max=1.0)  # fraction of samples in linear warm-up
    residual: float = _spec(min=0.0)  # smooth baseline residual added, x the baseline's range
    cosmic_ray_prob: float = _spec(min=0.0, max=1.0)  # in place of simulate's, for training


@dataclass(frozen=True)
class FinetuneParams:
    """Fine-tuning of the production network on real spectra (``data/real``)."""

    real_source: str = _spec()  # the folder data/real is seeded from
    holdout_fraction: float = _spec(min=0.01, max=0.99)  # real files kept out for evaluation
    targets: str = _spec(choices=("pseudo", "refined", "transplant"))  # raw spectra: no reference
    real_samples: int = _spec(min=1)  # augmented real training spectra
    replay_samples: int = _spec(min=0)  # simulated training spectra replayed with them
    min_window: float = _spec(min=0.05, max=1.0)  # smallest crop, fraction of the axis
    seed: int = _spec(min=0)
    epochs: int = _spec(min=1)
    lr: float = _spec(min=0.0)
    lr_step: int = _spec(min=1)
    lr_gamma: float = _spec(min=0.0, max=1.0)
    max_sim_rmse_ratio: float = _spec(min=1.0)  # simulated-test RMSE vs the parent's, at most
    figures: int = _spec(min=0)  # held-out real spectra drawn in the report


@dataclass(frozen=True)
class SemirealParams:
    """The real-reference benchmarks: the RRUFF pairs and the semi-real set built from them."""

    rruff_source: str = _spec()  # folder of the RRUFF pairs (raw/, processed/)
    seed: int = _spec(min=0)
    n_val: int = _spec(min=1)
    n_test: int = _spec(min=1)
    ratio: tuple[float, float] = _spec(min=1e-6, range=True)  # tallest band / background range
    read_noise: tuple[float, float] = _spec(min=0.0, range=True)  # sigma, background-range units


@dataclass(frozen=True)
class Params:
    """Everything in ``params.yaml``."""

    simulate: SimulateParams = _spec()
    model: ModelParams = _spec()
    train: TrainParams = _spec()
    classical: ClassicalParams = _spec()
    evaluate: EvaluateParams = _spec()
    student: StudentParams = _spec()
    finetune: FinetuneParams = _spec()
    semireal: SemirealParams = _spec()
    denoise: DenoiseParams = _spec()


def load_params(path: str | Path = "params.yaml", profile: str | None = None) -> Params:
    """Read and validate ``params.yaml``; with ``profile``, that profile laid over it.

    The file is read by :func:`pipeline.params_check.read_yaml`: a key given twice is refused.
    """
    return parse_params(read_yaml(path), profile)


def parse_params(data: Any, profile: str | None = None) -> Params:
    """Build :class:`Params` from a mapping, checking every key and value.

    Beyond each value on its own: ``simulate.length`` must be a multiple of what the
    networks' downsampling needs (``2 ** (len(channels) - 1)``: 32 for six levels), for the
    seed network and the student, or training would stop on a tensor size error; and
    ``model.attention: se`` needs ``model.arch: resunet``.

    An optional top-level ``profiles`` mapping holds named overlays (``profiles: {full:
    {train: {samples: 4500000}}}``): each is laid over the sections and the result checked
    like the base, whether or not it is used, so a bad profile is reported on every load
    (``profiles.full: train.samples: ...``). ``profile`` names the one to apply; the returned
    params are the merged values (the profiles themselves are not kept).

    Raises
    ------
    ConfigError
        A bad or missing key (retired keys say what replaced them), a bad profile, or
        ``profile`` not among the profiles.
    """
    profiles: dict = {}
    if isinstance(data, dict) and PROFILES in data:
        profiles = data[PROFILES]
        data = {k: v for k, v in data.items() if k != PROFILES}
    params = _checked(data)
    if not isinstance(profiles, dict):
        raise ConfigError(f"{PROFILES}: expected a mapping of names to overlays")
    for name, over in profiles.items():
        if not isinstance(over, dict):
            raise ConfigError(f"{PROFILES}.{name}: expected a mapping of sections, got {over!r}")
        try:
            chosen = _checked(overlay(data, over))
        except ConfigError as exc:
            raise ConfigError(f"{PROFILES}.{name}: {exc}") from exc
        if name == profile:
            params = chosen
    if profile is not None and profile not in profiles:
        have = ", ".join(map(str, profiles)) or "none"
        raise ConfigError(f"{PROFILES}.{profile}: no such profile (params.yaml has: {have})")
    return params


def overlay(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid on it, nested mappings merged (a new dict)."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        out[key] = (
            overlay(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
        )
    return out


def _checked(data: Any) -> Params:
    params = _build(Params, data, "")
    if params.model.attention != "none" and params.model.arch != "resunet":
        raise ConfigError(
            f"model.attention: {params.model.attention} needs model.arch: resunet "
            f"(the plain U-Net has no residual blocks), got arch {params.model.arch}"
        )
    for key, channels in (
        ("model.channels", params.model.channels),
        ("student.channels", params.student.channels),
    ):
        multiple = 2 ** (len(channels) - 1)
        if params.simulate.length % multiple:
            raise ConfigError(
                f"simulate.length: {params.simulate.length} is not a multiple of {multiple}, "
                f"which the {len(channels)} levels of {key} need"
            )
    model = params.model
    if model.mc_samples and not model.dropout:
        raise ConfigError(
            f"model.mc_samples: {model.mc_samples} MC-dropout passes need model.dropout > 0 "
            "(docs/uncertainty.md)"
        )
    if model.mc_samples == 1:
        raise ConfigError("model.mc_samples: a standard deviation needs at least 2 passes, got 1")
    if model.dropout and model.arch != "resunet":
        raise ConfigError(f"model.dropout: only the resunet network has dropout, not {model.arch}")
    return params


def to_dict(params: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists), the inverse of :func:`parse_params`."""
    return yaml.safe_load(yaml.safe_dump(_plain(dataclasses.asdict(params))))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "params.yaml"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    for name in unknown:
        if prefix + name in RETIRED:
            raise ConfigError(
                f"{prefix}{name}: no longer a params.yaml key ({RETIRED[prefix + name]}; "
                "docs/training.md)"
            )
    if unknown:
        raise ConfigError(
            f"{prefix}{unknown[0]}: unknown key (expected one of {', '.join(sorted(fields))})"
        )
    values = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in data:
            raise ConfigError(f"{key}: missing")
        values[name] = _value(hints[name], data[name], key, f.metadata)
    return cls(**values)


def _value(hint: Any, raw: Any, key: str, checks: typing.Mapping[str, Any]) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, raw, key + ".")
    origin = typing.get_origin(hint)
    if origin is dict:
        return _mixture(raw, key, checks)
    if origin is tuple:
        item_type, *rest = typing.get_args(hint)
        if not isinstance(raw, list | tuple):
            raise ConfigError(
                f"{key}: expected a list of {item_type.__name__}, got {_describe(raw)}"
            )
        if rest and rest[0] is not Ellipsis and len(raw) != len(rest) + 1:
            raise ConfigError(f"{key}: expected [low, high], got {raw!r}")
        if not raw:
            raise ConfigError(f"{key}: expected a non-empty list")
        items = tuple(_scalar(item_type, v, f"{key}[{i}]", checks) for i, v in enumerate(raw))
        sequence_checks(key, items, checks)
        if checks.get("range"):
            low, high = items
            empty = low > high if item_type is int else low >= high
            if empty:
                raise ConfigError(
                    f"{key}: empty or inverted range {list(raw)}; expected [low, high] with "
                    f"low {'<=' if item_type is int else '<'} high"
                )
        return items
    return _scalar(hint, raw, key, checks)


def _scalar(kind: type, raw: Any, key: str, checks: typing.Mapping[str, Any]) -> Any:
    if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
        raw = float(raw)
    if kind is float and isinstance(raw, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            raw = float(raw)
        except ValueError:
            pass
    if type(raw) is not kind:
        raise ConfigError(f"{key}: expected {kind.__name__}, got {_describe(raw)}")
    if kind is float and not math.isfinite(raw):
        raise ConfigError(f"{key}: expected a finite number, got {raw!r}")
    if "choices" in checks and raw not in checks["choices"]:
        raise ConfigError(f"{key}: expected one of {', '.join(checks['choices'])}, got {raw!r}")
    if "min" in checks and raw < checks["min"]:
        raise ConfigError(f"{key}: expected a value >= {checks['min']}, got {raw!r}")
    if "max" in checks and raw > checks["max"]:
        raise ConfigError(f"{key}: expected a value <= {checks['max']}, got {raw!r}")
    if checks.get("odd") and raw % 2 == 0:
        raise ConfigError(f"{key}: expected an odd number, got {raw!r}")
    return raw


def _mixture(raw: Any, key: str, checks: typing.Mapping[str, Any]) -> dict[str, float]:
    """Mixture weights: known names, non-negative numbers, not all zero."""
    allowed = checks["keys"]
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{key}: expected a mapping of {', '.join(allowed)} to weights")
    weights = {}
    for name, w in raw.items():
        if name not in allowed:
            raise ConfigError(f"{key}.{name}: unknown key (expected one of {', '.join(allowed)})")
        weights[name] = _scalar(float, w, f"{key}.{name}", {"min": 0.0})
    if sum(weights.values()) <= 0:
        raise ConfigError(f"{key}: expected at least one positive weight")
    return weights


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"
