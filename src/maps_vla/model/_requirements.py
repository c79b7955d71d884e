"""The oldest transformers the model code works with, checked when maps_vla.model is imported.

The vision towers and importers use transformers 5's module layout (e.g. `SiglipVisionModel.encoder`; in 4.x it sits
under `.vision_model`). 5.18.0 is the oldest release on which the model and importer tests pass (5.15.1 and 4.57.1
fail), so an older install gets this message instead of an AttributeError deep in a forward.
"""

from __future__ import annotations

import transformers
from packaging.version import Version

MIN_TRANSFORMERS = '5.18.0'


def check_transformers(version: str = transformers.__version__) -> None:
    """Raises ImportError naming the installed and the required version when transformers is too old."""
    if Version(version) < Version(MIN_TRANSFORMERS):
        raise ImportError(f'maps_vla needs transformers>={MIN_TRANSFORMERS} (found {version}): '
                          f"pip install 'transformers>={MIN_TRANSFORMERS},<6'")
