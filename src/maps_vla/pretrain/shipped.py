"""Where the pretrained prior ships inside the package (built by `maps-vla pretrain`, see its MODEL_CARD.md)."""

from __future__ import annotations

from pathlib import Path

__all__ = ['PRIOR_DIR', 'shipped_prior']

PRIOR_DIR = Path(__file__).resolve().parent.parent / 'assets' / 'prior'


def shipped_prior() -> Path:
    """The shipped prior's checkpoint folder.

    Raises:
        FileNotFoundError: this install carries no prior (it names the command that builds one).
    """
    if not (PRIOR_DIR / 'config.json').is_file():
        raise FileNotFoundError(f'No pretrained prior in {PRIOR_DIR}; build one with `maps-vla pretrain --config '
                                'config/pretrain/prior_cpu.yaml` and copy its train/policy folder there')
    return PRIOR_DIR
