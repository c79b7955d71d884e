"""Importers of published checkpoints: OpenVLA-OFT (HF layout) and MiniVLA (native Prismatic layout)."""

from maps_vla.model.importers.minivla import export_prismatic, import_minivla
from maps_vla.model.importers.openvla_oft import export_openvla_oft, import_openvla_oft

__all__ = ['import_openvla_oft', 'export_openvla_oft', 'import_minivla', 'export_prismatic']
