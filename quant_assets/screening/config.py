"""Screening configs: the YAML schema, loading and validation.

A config says what to ask the screener for (markets, server-side filters, sort, how many rows)
and how to turn the answer into signals (hygiene and liquidity gates, trend gates, ranking,
limit, declared direction). Every key is checked on load: an unknown key, a wrong type or an
impossible value is a :class:`~quant_assets.errors.ConfigError` naming the file and key path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError as PydanticValidationError
from pydantic import model_validator

from quant_assets.errors import ConfigError
from quant_assets.sources.base import FilterOperation, ScanFilter, ScanQuery
from quant_assets.sources.screener.fields import markets_lacking

#: Environment variable naming the directory of screening configs.
CONFIGS_ENV = "QUANT_ASSETS_CONFIGS"
#: The repository's own configs, found from the package so any working directory works.
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

#: Columns every raw screen carries, whatever a config adds. Each market is asked only for
#: those it has (``market_cap_calc`` is null for futures and forex, which have none).
BASE_COLUMNS: tuple[str, ...] = (
    "name", "description", "exchange", "type", "subtype", "currency",
    "close", "volume", "Value.Traded", "market_cap_calc", "change",
    "Perf.W", "Perf.1M", "Perf.3M", "Volatility.D", "ADX", "ADX+DI", "ADX-DI", "RSI",
    "Recommend.All", "pricescale", "minmov",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterSpec(_Strict):
    """One server-side filter, as the scanner takes it."""

    left: str
    operation: FilterOperation
    right: Any = None


class HygieneSpec(_Strict):
    """Basic symbol hygiene, applied first."""

    exchanges: list[str] = Field(default_factory=list)  # empty: any exchange
    quotes: list[str] = Field(default_factory=list)  # empty: any quote currency
    include: list[str] = Field(default_factory=list)  # symbols always kept by hygiene
    exclude: list[str] = Field(default_factory=list)  # symbols or bases always dropped
    allow_perps: bool = True
    allow_dated_futures: bool = True
    exclude_stable_bases: bool = True


class MarketCapSpec(_Strict):
    min: float = Field(default=0.0, ge=0)
    max_rank: int | None = Field(default=None, gt=0)


class VolatilitySpec(_Strict):
    """Band on ``Volatility.D`` (percent of the low)."""

    min: float = Field(default=0.0, ge=0)
    max: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> VolatilitySpec:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        return self


class LiquiditySpec(_Strict):
    min_value_traded: float = Field(default=0.0, ge=0)
    min_volume: float = Field(default=0.0, ge=0)


class TrendSpec(_Strict):
    """Alpha gates. Momentum horizons must point the config's way (up for LONG, down for SHORT)."""

    adx_min: float = Field(default=15.0, ge=0, le=100)
    momentum: list[Literal["Perf.W", "Perf.1M", "Perf.3M", "Perf.6M", "Perf.Y"]] = Field(
        default_factory=lambda: ["Perf.1M"]
    )
    logic: Literal["AND", "OR"] = "AND"
    recommend_min: float | None = Field(default=None, ge=-1, le=1)


class SortSpec(_Strict):
    by: str = "Value.Traded"
    order: Literal["asc", "desc"] = "desc"


class ScreeningConfig(_Strict):
    """One screening config: what to fetch, which gates to apply, which way to trade."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    direction: Literal["LONG", "SHORT"]
    markets: list[Literal["crypto", "futures", "america", "forex"]] = Field(min_length=1)
    filters: list[FilterSpec] = Field(default_factory=list)
    columns: list[str] = Field(default_factory=list)
    sort: SortSpec = Field(default_factory=SortSpec)
    prefilter_limit: int = Field(default=300, gt=0, le=5000)
    hygiene: HygieneSpec = Field(default_factory=HygieneSpec)
    market_cap: MarketCapSpec = Field(default_factory=MarketCapSpec)
    volatility: VolatilitySpec = Field(default_factory=VolatilitySpec)
    liquidity: LiquiditySpec = Field(default_factory=LiquiditySpec)
    base_limit: int = Field(default=100, gt=0)
    trend: TrendSpec = Field(default_factory=TrendSpec)
    alpha_field: str = "Perf.3M"
    limit: int = Field(default=20, gt=0)
    source_file: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _fields_exist(self) -> ScreeningConfig:
        """A field the scanner filters or sorts on, or the alpha and trend read, must exist in
        every market of the config (else TradingView refuses the request, or a market's rows
        can never be selected); an extra column in at least one."""
        everywhere = [*((f"filters[{i}].left", f.left) for i, f in enumerate(self.filters)),
                      ("sort.by", self.sort.by), ("alpha_field", self.alpha_field),
                      *((f"trend.momentum[{i}]", m) for i, m in enumerate(self.trend.momentum))]
        problems = [f"key '{key}': field '{name}' is not available in market {', '.join(lacking)}"
                    for key, name in everywhere if (lacking := markets_lacking(self.markets, name))]
        problems += [
            f"key 'columns[{i}]': field '{name}' is not available in any of the markets {', '.join(self.markets)}"
            for i, name in enumerate(self.columns) if len(markets_lacking(self.markets, name)) == len(self.markets)
        ]
        if problems:
            raise ValueError("; ".join(problems) + " (no recorded TradingView field list shows it there)")
        return self

    @model_validator(mode="after")
    def _limits_ordered(self) -> ScreeningConfig:
        if self.limit > self.base_limit:
            raise ValueError(f"limit ({self.limit}) must be <= base_limit ({self.base_limit})")
        if self.base_limit > self.prefilter_limit:
            raise ValueError(
                f"base_limit ({self.base_limit}) must be <= prefilter_limit ({self.prefilter_limit})"
            )
        return self

    def scan_query(self) -> ScanQuery:
        """The screener request this config makes (exchange whitelist sent server-side too)."""
        filters = [ScanFilter(f.left, f.operation, f.right) for f in self.filters]
        if self.hygiene.exchanges:
            filters.append(ScanFilter("exchange", "in_range", list(self.hygiene.exchanges)))
        columns = list(BASE_COLUMNS)
        needed = [*self.columns, self.alpha_field, self.sort.by, *self.trend.momentum]
        columns += [c for c in dict.fromkeys(needed) if c not in columns]
        return ScanQuery(
            markets=tuple(self.markets),
            columns=tuple(columns),
            filters=tuple(filters),
            sort_by=self.sort.by,
            descending=self.sort.order == "desc",
            limit=self.prefilter_limit,
            label=self.source_file or self.name,
        )


class _Loader(yaml.SafeLoader):
    """YAML with the numbers of YAML 1.2: ``1.0e15`` and ``1e6`` are floats (YAML 1.1, which
    PyYAML follows, reads them as strings, which the scanner would take for field names)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read screening config ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    return raw


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _with_presets(path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], tuple[Path, ...]]:
    """The file's keys over those of its ``base_preset`` chain, and the chain of files read."""
    raw = _read_mapping(path)
    chain = (*chain, path.resolve())
    preset = raw.pop("base_preset", None)
    if preset is None:
        return raw, chain
    if not isinstance(preset, str) or not preset:
        raise ConfigError(f"{path}: key 'base_preset': expected a file name (string), got {preset!r}")
    preset_path = path.parent / preset
    if not preset_path.suffix:
        preset_path = preset_path.with_suffix(".yaml")
    if preset_path.resolve() in chain:
        cycle = " -> ".join(str(p) for p in (*chain, preset_path.resolve()))
        raise ConfigError(f"{path}: key 'base_preset': presets form a cycle: {cycle}")
    base, chain = _with_presets(preset_path, chain)
    return _merged(base, raw), chain


def load_config(path: str | Path) -> ScreeningConfig:
    """Load and validate one YAML screening config.

    A config may name a ``base_preset`` (a YAML file, relative to the config's folder): the
    config's keys are laid over the preset's, mappings merged key by key, lists and values
    replaced. Presets may themselves have presets.

    Raises
    ------
    ConfigError
        The file or a preset is missing or not YAML, presets form a cycle, or a key is
        unknown, mistyped or impossible; the message names the file and the key path.
    """
    path = Path(path)
    raw, chain = _with_presets(path)
    try:
        return ScreeningConfig.model_validate({**raw, "source_file": str(path)})
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"key '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
            + (f" (got {err['input']!r})" if err["type"] != "missing" and not isinstance(err["input"], dict) else "")
            if err["loc"] else err["msg"].removeprefix("Value error, ")  # a check across keys names them
            for err in exc.errors()
        )
        presets = f" (with presets {', '.join(str(p) for p in chain[1:])})" if len(chain) > 1 else ""
        raise ConfigError(f"{path}: invalid screening config{presets}: {problems}") from exc


def load_configs(paths: Sequence[str | Path]) -> list[ScreeningConfig]:
    """Load several configs; names must be unique because they key the raw screen."""
    configs = [load_config(p) for p in paths]
    seen: dict[str, str] = {}
    for cfg in configs:
        if cfg.name in seen:
            raise ConfigError(
                f"{cfg.source_file}: config name '{cfg.name}' is also used by {seen[cfg.name]}"
            )
        seen[cfg.name] = cfg.source_file
    if not configs:
        raise ConfigError("no screening configs given")
    return configs


def default_config_paths(directory: str | Path = "configs") -> list[Path]:
    """Every ``*.yaml`` in ``directory``, sorted by name."""
    directory = Path(directory)
    paths = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not paths:
        raise ConfigError(f"{directory}: no screening configs (*.yaml) found")
    return paths


def resolve_configs(paths: Sequence[str | Path] = (), directory: str | Path = "") -> list[ScreeningConfig]:
    """The configs to run: ``paths`` if any, else every YAML in ``directory``, else in
    ``$QUANT_ASSETS_CONFIGS``, else in the repository's ``configs/``."""
    if paths:
        return load_configs(paths)
    chosen = directory or os.environ.get(CONFIGS_ENV) or DEFAULT_CONFIG_DIR
    return load_configs(default_config_paths(chosen))
