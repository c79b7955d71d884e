"""Image augmentation for VLA fine-tuning, in plain torch (no torchvision on CPU machines).

The OpenVLA/OFT recipe: a random crop of 90 % of the area (square), resized back, plus brightness ±0.2,
contrast and saturation in [0.8, 1.2] and hue ±0.05; at test time a centred crop of the same area.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

__all__ = ['AugmentConfig', 'augment_images', 'center_crop']


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True  # off for evaluation-like training or debugging
    crop_area: float = 0.9  # fraction of the image area kept by the random (train) / centred (test) crop
    brightness: float = 0.2  # additive brightness offset drawn from [-b, b]
    contrast: tuple[float, float] = (0.8, 1.2)  # contrast factor range
    saturation: tuple[float, float] = (0.8, 1.2)  # saturation factor range
    hue: float = 0.05  # hue rotation drawn from [-h, h] turns (1.0 = full circle)
    # fraction of samples whose normalized proprio state is zeroed (the data's q01-q99 midpoint): with the state
    # always there, a small policy trained from scratch stops reading the images (issue 13's collapse)
    state_dropout: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.crop_area <= 1.0:
            raise ValueError(f'AugmentConfig.crop_area must be in (0, 1], got {self.crop_area}')
        if not 0.0 <= self.state_dropout <= 1.0:
            raise ValueError(f'AugmentConfig.state_dropout must be in [0, 1], got {self.state_dropout}')
        if self.brightness < 0 or not 0 <= self.hue <= 0.5:
            raise ValueError(f'AugmentConfig: brightness must be >= 0 and hue in [0, 0.5], got {self.brightness}, {self.hue}')
        for name in ('contrast', 'saturation'):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f'AugmentConfig.{name} must be (low, high) with 0 <= low <= high, got {(low, high)}')


def _crop_resize(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, side: int) -> torch.Tensor:
    """Crop a (side x side) box at per-image offsets and resize it back to the input size (bilinear)."""
    _, _, h, w = images.shape
    crops = torch.stack([img[:, y:y + side, x:x + side] for img, y, x in zip(images, top.tolist(), left.tolist())])
    return F.interpolate(crops, size=(h, w), mode='bilinear', align_corners=False, antialias=True)


def center_crop(images: torch.Tensor, crop_area: float = 0.9) -> torch.Tensor:
    """The test-time counterpart of the random crop: a centred box of `crop_area` of the area, resized back.

    Args:
        images: float (B, 3, H, W).
    """
    b, _, h, w = images.shape
    side = max(1, round(math.sqrt(crop_area) * min(h, w)))
    top = torch.full((b,), (h - side) // 2)
    left = torch.full((b,), (w - side) // 2)
    return _crop_resize(images, top, left, side)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def _rotate_hue(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    # Rotation about the grey axis in YIQ space: a cheap, differentiable stand-in for an HSV hue shift.
    to_yiq = images.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    angle = 2 * math.pi * turns
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(images.shape[0], 3, 3, dtype=images.dtype, device=images.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    matrix = from_yiq @ rot @ to_yiq  # (B, 3, 3)
    return torch.einsum('bij,bjhw->bihw', matrix, images)


def augment_images(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop + colour jitter, drawn independently per image; all views of a sample should share a call.

    Args:
        images: float (B, 3, H, W) in [0, 1].
        cfg: the augmentation ranges.
        generator: the RNG (pass one for reproducible training).

    Returns:
        Augmented images, same shape, clamped to [0, 1].
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f'augment_images expects (B, 3, H, W) images, got shape {tuple(images.shape)}')
    if not cfg.enabled:
        return images
    b, _, h, w = images.shape

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator, dtype=images.dtype)

    side = max(1, round(math.sqrt(cfg.crop_area) * min(h, w)))
    top = (torch.rand(b, generator=generator) * (h - side + 1)).long()
    left = (torch.rand(b, generator=generator) * (w - side + 1)).long()
    out = _crop_resize(images, top, left, side)
    view = (b, 1, 1, 1)
    out = out + uniform(-cfg.brightness, cfg.brightness).view(view).to(out.device)
    mean = _grayscale(out).mean(dim=(2, 3), keepdim=True)
    out = (out - mean) * uniform(*cfg.contrast).view(view).to(out.device) + mean
    grey = _grayscale(out)
    out = (out - grey) * uniform(*cfg.saturation).view(view).to(out.device) + grey
    if cfg.hue > 0:
        out = _rotate_hue(out, uniform(-cfg.hue, cfg.hue).to(out.device))
    return out.clamp_(0.0, 1.0)
