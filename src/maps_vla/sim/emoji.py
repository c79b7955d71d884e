"""Emoji card textures for the GrinningFace-style task, drawn at run time from Noto Color Emoji with Pillow.

The split below is fixed: policies are fine-tuned on episodes that use `EMOJI_TRAIN` and evaluated on
`EMOJI_HELDOUT` (never seen in training), as in GrinningFace (Zhang et al., "How Do VLAs Effectively Inherit
from VLMs?"). Instructions name an emoji by its lower-cased Unicode name, e.g. "smiling face with sunglasses".

Noto Color Emoji is a CBDT bitmap font with one strike of 109 px; Pillow must load it at size 109 and draw with
`embedded_color=True`. Debian/Ubuntu ship it as `fonts-noto-color-emoji`.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import numpy as np

__all__ = ['EMOJI_TRAIN', 'EMOJI_HELDOUT', 'DEFAULT_FONT', 'emoji_name', 'render_emoji']

# 16 training emojis: faces, animals, food and objects with distinct shapes and colours.
EMOJI_TRAIN = (
    '\U0001F600',  # grinning face
    '\U0001F60E',  # smiling face with sunglasses
    '\U0001F60D',  # smiling face with heart-shaped eyes
    '\U0001F622',  # crying face
    '\U0001F621',  # pouting face
    '\U0001F634',  # sleeping face
    '\U0001F631',  # face screaming in fear
    '\U0001F436',  # dog face
    '\U0001F431',  # cat face
    '\U0001F438',  # frog face
    '\U0001F34E',  # red apple
    '\U0001F355',  # slice of pizza
    '\U0001F308',  # rainbow
    '\U0001F680',  # rocket
    '\U0001F697',  # automobile
    '\U0001F525',  # fire
)
# 8 held-out emojis, only in the OOD variant.
EMOJI_HELDOUT = (
    '\U0001F913',  # nerd face
    '\U0001F920',  # face with cowboy hat
    '\U0001F637',  # face with medical mask
    '\U0001F43C',  # panda face
    '\U0001F427',  # penguin
    '\U0001F34C',  # banana
    '\U0001F388',  # balloon
    '\U0001F6B2',  # bicycle
)
DEFAULT_FONT = Path('/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf')
_STRIKE_SIZE = 109  # the only bitmap size in NotoColorEmoji.ttf


def emoji_name(emoji: str) -> str:
    """The lower-cased Unicode name of a single-code-point emoji, e.g. 'smiling face with sunglasses'."""
    return unicodedata.name(emoji).lower()


@functools.lru_cache(maxsize=4)
def _font(path: str):
    from PIL import ImageFont

    if not Path(path).is_file():
        raise FileNotFoundError(f'emoji font {path!r} not found; install the Debian/Ubuntu package '
                                f'fonts-noto-color-emoji (apt-get install -y fonts-noto-color-emoji) or set '
                                f'EnvConfig.emoji_font to a NotoColorEmoji.ttf')
    return ImageFont.truetype(path, _STRIKE_SIZE)


def render_emoji(emoji: str, size: int = 128, font_path: Path | None = None,
                 background: tuple[int, int, int] = (245, 245, 240)) -> np.ndarray:
    """Draw one emoji centred on a card-coloured square.

    Args:
        emoji: a single emoji character.
        size: output side in pixels.
        font_path: NotoColorEmoji.ttf; default `DEFAULT_FONT`.
        background: RGB card colour behind the emoji.

    Returns:
        (size, size, 3) uint8 RGB image, emoji upright (row 0 = top).

    Raises:
        FileNotFoundError: if the font is missing (names the Debian package to install).
        ValueError: if the font has no glyph for `emoji`.
    """
    from PIL import Image, ImageDraw

    font = _font(str(font_path or DEFAULT_FONT))
    canvas = Image.new('RGBA', (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((80, 80), emoji, font=font, embedded_color=True, anchor='mm')
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f'the emoji font has no glyph for {emoji!r} (U+{ord(emoji[0]):04X})')
    glyph = canvas.crop(box)
    inner = int(size * 0.8)  # leave a white border, like a printed card
    scale = inner / max(glyph.size)
    glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))), Image.LANCZOS)
    card = Image.new('RGBA', (size, size), (*background, 255))
    card.alpha_composite(glyph, ((size - glyph.width) // 2, (size - glyph.height) // 2))
    return np.asarray(card.convert('RGB'), dtype=np.uint8)
