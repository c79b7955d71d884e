"""Text tokenizers for the VLA: a built-in character tokenizer for tiny models, or local pretrained files.

Real tokenizers (Llama-2, Qwen2.5) cannot be downloaded here, so tiny configs use a deterministic character-level
tokenizer built in code with `tokenizers` and wrapped as a transformers fast tokenizer: it saves to and loads from
`tokenizer.json` like any other. Real checkpoints load their tokenizer from the local checkpoint folder.

A model trained from scratch on generated language (the GrinningFace experiment's VLM) can use a word tokenizer
over its closed vocabulary instead (`build_word_tokenizer`): like a subword tokenizer, it gives an emoji name a
few tokens rather than one per character, which a tiny LLM reads far more easily.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

__all__ = ['build_char_tokenizer', 'build_word_tokenizer', 'load_tokenizer', 'CHAR_TOKENIZER_SIZE']

logger = logging.getLogger(__name__)

_SPECIALS = ('<pad>', '<s>', '</s>', '<unk>')
_CHARS = tuple(chr(i) for i in range(32, 127)) + ('\n',)
# Like MiniVLA's <|extra_i|>: 256 ids at the end of the vocabulary that the discrete head can own.
_EXTRAS = tuple(f'<|extra_{i}|>' for i in range(256))
CHAR_TOKENIZER_SIZE = len(_SPECIALS) + len(_CHARS) + len(_EXTRAS)


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A character tokenizer: 4 specials, printable ASCII + newline, 256 extra ids (356 tokens).

    It prepends `<s>` (so token 0 is BOS, as with Llama, and the image patches go right after it). Unknown
    characters map to `<unk>`.

    Returns:
        A fast tokenizer with bos/eos/pad/unk set; `len(tokenizer) == CHAR_TOKENIZER_SIZE`.
    """
    vocab = {token: i for i, token in enumerate(_SPECIALS + _CHARS + _EXTRAS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token='<unk>'))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern=Regex(r'.|\n'), behavior='isolated')
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(single='<s> $A', special_tokens=[('<s>', vocab['<s>'])])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token='<s>', eos_token='</s>', pad_token='<pad>',
                                   unk_token='<unk>')


def build_word_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A word tokenizer whose vocabulary is every word and punctuation mark of `texts`.

    Words split on whitespace and punctuation ("heart-shaped" -> heart, -, shaped); the ids are the 4 specials,
    the sorted words, then the 256 extra ids of the character tokenizer, and `<s>` is prepended the same way.
    Words outside the vocabulary map to `<unk>`.

    Raises:
        ValueError: `texts` hold no word.
    """
    pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation('isolated')])
    words = sorted({w for text in texts for w, _ in pre.pre_tokenize_str(text)} - set(_SPECIALS + _EXTRAS))
    if not words:
        raise ValueError('build_word_tokenizer: the texts hold no word')
    vocab = {token: i for i, token in enumerate(_SPECIALS + tuple(words) + _EXTRAS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token='<unk>'))
    backend.pre_tokenizer = pre
    backend.decoder = decoders.WordPiece(cleanup=True)  # words joined by spaces, no space before punctuation
    backend.post_processor = processors.TemplateProcessing(single='<s> $A', special_tokens=[('<s>', vocab['<s>'])])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token='<s>', eos_token='</s>', pad_token='<pad>',
                                   unk_token='<unk>')


def load_tokenizer(source: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer named by `VLAConfig.tokenizer`: 'char' or a local folder with tokenizer files.

    A tokenizer without a pad token gets its eos token as pad (Qwen2.5 has one, Llama-2 has `<PAD>` in OpenVLA).

    Raises:
        FileNotFoundError: `source` is neither 'char' nor an existing folder.
    """
    if str(source) == 'char':
        return build_char_tokenizer()
    path = Path(source)
    if not path.is_dir():
        raise FileNotFoundError(f"Tokenizer folder {str(path)!r} does not exist (use 'char' for the built-in one)")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.pad_token_id is None:
        logger.info('Tokenizer in %s has no pad token; using eos %r', path, tokenizer.eos_token)
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
