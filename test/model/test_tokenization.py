"""The word tokenizer for models trained from scratch on generated language."""

import pytest

from maps_vla.model.vla.tokenization_vla import CHAR_TOKENIZER_SIZE, build_word_tokenizer, load_tokenizer

_TEXTS = ['q: where is the smiling face with heart-shaped eyes?\na:', 'far left', 'put the cube on the rocket']


def test_words_and_punctuation_are_single_tokens():
    tok = build_word_tokenizer(_TEXTS)
    ids = tok('q: where is the rocket?\na:').input_ids
    assert ids[0] == tok.bos_token_id and tok.unk_token_id not in ids
    assert tok.convert_ids_to_tokens(ids[1:]) == ['q', ':', 'where', 'is', 'the', 'rocket', '?', 'a', ':']
    assert len(tok(' heart-shaped', add_special_tokens=False).input_ids) == 3  # heart, -, shaped
    assert tok('dog', add_special_tokens=False).input_ids == [tok.unk_token_id]
    assert tok.decode(tok('far left', add_special_tokens=False).input_ids) == 'far left'


def test_layout_matches_the_char_tokenizer_specials_and_extras():
    tok = build_word_tokenizer(_TEXTS)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.convert_ids_to_tokens(len(tok) - 1) == '<|extra_255|>' and len(tok) < CHAR_TOKENIZER_SIZE
    assert build_word_tokenizer(reversed(_TEXTS)).get_vocab() == tok.get_vocab()  # order-free, deterministic


def test_saves_and_loads_from_a_folder(tmp_path):
    tok = build_word_tokenizer(_TEXTS)
    tok.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert loaded('put the cube on the rocket').input_ids == tok('put the cube on the rocket').input_ids
    assert loaded.eos_token_id == tok.eos_token_id


def test_empty_texts_are_rejected():
    with pytest.raises(ValueError, match='no word'):
        build_word_tokenizer(['  \n'])
