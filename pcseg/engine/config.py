"""Compose the hydra config of a run: `train.yaml` + an experiment + command-line overrides."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pcseg.paths import config_dir, repo_root
from pcseg.utils.errors import ConfigError


def list_experiments() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


def compose_config(experiment: str | None, overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with ``experiment=<experiment>`` and ``overrides``.

    Raises:
        ConfigError: unknown experiment, malformed override or unknown key, with hydra's explanation.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides or [])
    if experiment:
        known = list_experiments()
        if experiment not in known:
            raise ConfigError(f"unknown experiment {experiment!r}; available: {', '.join(known)}")
        overrides = [f"experiment={experiment}", *overrides]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot compose the config: {exc}") from None
    finally:
        GlobalHydra.instance().clear()
    return cfg


def resolve_run_dir(cfg: DictConfig) -> Path:
    """The run folder: ``cfg.run_dir`` or ``outputs/<name>/<timestamp>`` (under the repo when in a checkout)."""
    if cfg.get("run_dir"):
        return Path(cfg.run_dir).expanduser().resolve()
    base = (repo_root() or Path.cwd()) / "outputs"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return base / str(cfg.name) / stamp


def to_container(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
