"""Recognise a VLA's pretrained module stack (DINOv2 → SigLIP → projector → LLM layers) from parameter names.

MAPS orders the pretrained modules by how much of their pretraining should survive fine-tuning
(maps_spd.md §2.1): DINOv2 blocks, SigLIP blocks, the projector ("bridge"), then the LLM layers early to late.
This module turns parameter names alone (no weights needed) into that ordered stack of *slots* and tells, for
any parameter name, where it sits (`Location`).

Recognised names (after stripping wrapper prefixes `base_model.model.` (PEFT), `module.` (DDP), `_orig_mod.`):

| component | root | blocks |
|---|---|---|
| DINOv2 | `vision_backbone.featurizer` | `.blocks.N` (timm, Prismatic/OpenVLA/MiniVLA), `.encoder.layer.N` (HF Dinov2WithRegisters) |
| SigLIP | `vision_backbone.fused_featurizer` | `.blocks.N` (timm), `.vision_model.encoder.layers.N` (HF SiglipVisionModel) |
| projector | `projector` | none: one slot (`fc1/fc2/fc3`) |
| LLM | `language_model` | `.model.layers.N` (HF Llama/Qwen2) |

New modules (default `action_head`, `proprio_projector`) have no pretrained weights; `vision_backbone.frozen_featurizer*`
is the frozen dual-encoder copy. Parameters of a component that sit outside its numbered blocks are `pre`
(patch/position embeddings, cls/register tokens, `embed_tokens`) unless their name starts with a final-layer word
(`norm`, `layernorm`, `post_layernorm`, `fc_norm`, `head`, `attn_pool`, `lm_head`), which makes them `post`.
Any other model is described by an explicit ordered list of module-name prefixes: each prefix is one slot, or,
when it has numbered children (`prefix.0`, `prefix.1`, ...), one slot per child block.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

__all__ = [
    'DEFAULT_NEW_MODULES',
    'FROZEN_PREFIXES',
    'Location',
    'ModuleStack',
    'Slot',
    'is_under',
    'recognize_stack',
    'strip_wrappers',
]

DEFAULT_NEW_MODULES: tuple[str, ...] = ('action_head', 'proprio_projector')
FROZEN_PREFIXES: tuple[str, ...] = ('vision_backbone.frozen_featurizer',)
_WRAPPER_PREFIXES = ('base_model.model.', 'module.', '_orig_mod.')
_POST_RE = re.compile(r'^(?:vision_model\.|model\.)?(?:norm|layernorm|post_layernorm|fc_norm|head|attn_pool|lm_head)(?:\.|$)')


def strip_wrappers(name: str) -> str:
    """`name` without leading PEFT/DDP/torch.compile wrapper prefixes (`base_model.model.`, `module.`, `_orig_mod.`)."""
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix):], True
    return name


def is_under(name: str, prefix: str) -> bool:
    """Whether `name` is the module/parameter `prefix` or lies below it (`prefix.*`), segment-wise."""
    return name == prefix or name.startswith(prefix + '.')


@dataclasses.dataclass(frozen=True)
class Slot:
    """One position of the stack: a transformer block, or a whole module such as the projector."""

    name: str  # module prefix without wrapper prefixes, e.g. 'language_model.model.layers.3' or 'projector'
    backbone: str  # 'dinov2' | 'siglip' | 'projector' | 'llm', or the explicit prefix it came from
    block: int | None  # block number inside its backbone; None for a single-slot module


@dataclasses.dataclass(frozen=True)
class Location:
    """Where one parameter sits."""

    kind: str  # 'block' | 'pre' | 'post' | 'module' (single-slot) | 'new' | 'frozen' | 'unknown'
    backbone: str | None  # Slot.backbone; the new-module / frozen prefix for those kinds; None if unknown
    slot: int | None  # index into ModuleStack.slots ('pre' → its backbone's first block, 'post' → last)
    unit: str  # display and grouping unit: a slot name, '<root>:embed', '<root>:final', a new module, ...


@dataclasses.dataclass(frozen=True)
class _Component:
    backbone: str
    root: str
    block_re: re.Pattern[str] | None  # group 1: block prefix, group 2: block number; None: one slot


def _known_components() -> list[_Component]:
    return [
        _Component('dinov2', 'vision_backbone.featurizer',
                   re.compile(r'^(vision_backbone\.featurizer\.(?:blocks|encoder\.layer)\.(\d+))(?:\.|$)')),
        _Component('siglip', 'vision_backbone.fused_featurizer',
                   re.compile(r'^(vision_backbone\.fused_featurizer\.(?:blocks|(?:vision_model\.)?encoder\.layers)\.(\d+))(?:\.|$)')),
        # native Prismatic names the projector `projector.{0,2,4}` (an nn.Sequential): still one bridge slot
        _Component('projector', 'projector', None),
        _Component('llm', 'language_model', re.compile(r'^(language_model\.(?:model\.)?layers\.(\d+))(?:\.|$)')),
    ]


def _component_of(components: Sequence[_Component], bare: str) -> _Component | None:
    """The component whose root is the longest module-prefix of `bare`."""
    best = None
    for comp in components:
        if is_under(bare, comp.root) and (best is None or len(comp.root) > len(best.root)):
            best = comp
    return best


def _prefix_component(prefix: str) -> _Component:
    return _Component(prefix, prefix, re.compile(rf'^({re.escape(prefix)}\.(\d+))(?:\.|$)'))


class ModuleStack:
    """The ordered slots of a model's pretrained modules, and where each parameter name belongs.

    Build it with `recognize_stack`. `slots` runs DINOv2 blocks → SigLIP blocks → projector → LLM layers for
    Prismatic-style models, or follows the explicit prefixes in the given order.
    """

    def __init__(self, components: Sequence[_Component], blocks: dict[str, list[int]], block_prefix: dict[str, str],
                 new_modules: Sequence[str], frozen_prefixes: Sequence[str]) -> None:
        self._components = list(components)
        self.new_modules: tuple[str, ...] = tuple(new_modules)
        self.frozen_prefixes: tuple[str, ...] = tuple(frozen_prefixes)
        slots: list[Slot] = []
        self._first_last: dict[str, tuple[int, int]] = {}
        self._index: dict[tuple[str, int | None], int] = {}
        for comp in self._components:
            if comp.backbone not in blocks:
                continue
            start = len(slots)
            for n in blocks[comp.backbone] or [None]:
                self._index[(comp.backbone, n)] = len(slots)
                name = comp.root if n is None else f'{block_prefix[comp.backbone]}.{n}'
                slots.append(Slot(name, comp.backbone, n))
            self._first_last[comp.backbone] = (start, len(slots) - 1)
        self.slots: tuple[Slot, ...] = tuple(slots)

    @property
    def backbones(self) -> list[str]:
        """Backbone labels in stack order (e.g. ['dinov2', 'siglip', 'projector', 'llm'])."""
        return list(dict.fromkeys(s.backbone for s in self.slots))

    def locate(self, name: str) -> Location:
        """Where parameter `name` (with or without wrapper prefixes) sits in the stack."""
        bare = strip_wrappers(name)
        for prefix in self.frozen_prefixes:
            if bare.startswith(prefix):
                return Location('frozen', prefix, None, prefix)
        for prefix in self.new_modules:
            if is_under(bare, prefix):
                return Location('new', prefix, None, prefix)
        comp = _component_of(self._components, bare)
        if comp is None or comp.backbone not in self._first_last:
            return Location('unknown', None, None, bare.rsplit('.', 1)[0] if '.' in bare else bare)
        match = comp.block_re.match(bare) if comp.block_re else None
        if match and (comp.backbone, int(match.group(2))) in self._index:
            return Location('block', comp.backbone, self._index[(comp.backbone, int(match.group(2)))], match.group(1))
        if (comp.backbone, None) in self._index:
            return Location('module', comp.backbone, self._index[(comp.backbone, None)], comp.root)
        first, last = self._first_last[comp.backbone]
        rest = bare[len(comp.root) + 1:]
        if _POST_RE.match(rest):
            return Location('post', comp.backbone, last, f'{comp.root}:final')
        return Location('pre', comp.backbone, first, f'{comp.root}:embed')

    def sort_key(self, name: str) -> tuple[int, int]:
        """A key that puts names in stack order: slot, then embeddings < blocks < final layers; new, unknown last."""
        loc = self.locate(name)
        if loc.slot is None:
            return (len(self.slots) + {'unknown': 0, 'new': 1, 'frozen': 2}[loc.kind], 0)
        return (loc.slot, {'pre': 0, 'block': 1, 'module': 1, 'post': 2}[loc.kind])

    def canonical_order(self, names: Iterable[str]) -> list[str]:
        """`names` sorted into stack order (stable), e.g. for a checkpoint header whose keys are alphabetical."""
        return sorted(names, key=self.sort_key)

    def __repr__(self) -> str:
        counts = {b: sum(s.backbone == b for s in self.slots) for b in self.backbones}
        return f'ModuleStack({", ".join(f"{b}={n}" for b, n in counts.items())}, new={list(self.new_modules)})'


def recognize_stack(names: Iterable[str], prefixes: Sequence[str] | None = None, *,
                    new_modules: Sequence[str] = DEFAULT_NEW_MODULES,
                    frozen_prefixes: Sequence[str] = FROZEN_PREFIXES) -> ModuleStack:
    """Build the module stack of a model from its parameter names.

    Args:
        names: all parameter names of the model (trainable or not), with or without wrapper prefixes.
        prefixes: explicit ordered module-name prefixes for a model that is not Prismatic-style; each prefix is
            one slot, or one slot per numbered child when `prefix.N.*` names exist. None: recognise Prismatic/
            OpenVLA/MiniVLA/our names. `[]`: no stack (every name outside the new modules is 'unknown'), enough
            for the code schedules, `constant`, L2-SP and drift.
        new_modules: module prefixes without pretrained weights (λ = 0 in every schedule).
        frozen_prefixes: prefixes of frozen copies that never take part (the dual-encoder's frozen featurizer).

    Returns:
        The `ModuleStack`.

    Raises:
        ValueError: no name matches the known Prismatic components (and `prefixes` is None), or a prefix
            matches no name.
    """
    bare_names = [strip_wrappers(n) for n in names]
    if prefixes is None:
        components = _known_components()
    else:
        if isinstance(prefixes, str):
            raise TypeError(f'prefixes must be a sequence of strings, got the string {prefixes!r}')
        components = [_prefix_component(p.rstrip('.')) for p in prefixes]
    blocks: dict[str, set[int]] = {}
    block_prefix: dict[str, str] = {}
    for bare in bare_names:
        if any(bare.startswith(p) for p in frozen_prefixes) or any(is_under(bare, p) for p in new_modules):
            continue
        comp = _component_of(components, bare)
        if comp is None:
            continue
        numbers = blocks.setdefault(comp.backbone, set())
        match = comp.block_re.match(bare) if comp.block_re else None
        if match:
            numbers.add(int(match.group(2)))
            block_prefix.setdefault(comp.backbone, match.group(1).rsplit('.', 1)[0])
    if prefixes is not None:
        missing = [c.root for c in components if c.backbone not in blocks]
        if missing:
            raise ValueError(f'stack prefixes {missing!r} match no parameter name; names look like {bare_names[:3]!r}')
    elif not blocks:
        raise ValueError(
            'could not recognise a Prismatic/OpenVLA/MiniVLA module stack (vision_backbone.featurizer, '
            f'vision_backbone.fused_featurizer, projector, language_model) in names like {bare_names[:3]!r}; '
            'pass stack=[ordered module-name prefixes]')
    return ModuleStack(components, {k: sorted(v) for k, v in blocks.items()}, block_prefix, new_modules,
                       frozen_prefixes)
