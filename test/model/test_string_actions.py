"""String action tokenizer (arXiv 2509.11417): text format, round trip, forgiving parsing."""

import numpy as np
import pytest
import torch

from maps_vla.model.heads.string_actions import StringActionTokenizer
from maps_vla.model.vla.tokenization_vla import build_char_tokenizer


@pytest.fixture
def strings():
    return StringActionTokenizer(chunk_size=3, action_dim=2, decimals=2)


def test_format(strings):
    assert strings.encode(np.array([[0.123, -0.5], [1.7, -0.001], [0.0, 0.996]])) == '0.12 -0.50;1.00 0.00;0.00 1.00'


@pytest.mark.parametrize('decimals', [1, 2, 3])
def test_round_trip_within_half_a_last_digit(decimals):
    strings = StringActionTokenizer(8, 7, decimals)
    actions = np.random.default_rng(decimals).uniform(-1, 1, (8, 7))
    decoded, repairs = strings.decode(strings.encode(actions))
    assert repairs == 0 and decoded.shape == (8, 7) and decoded.dtype == np.float32
    assert np.abs(decoded - actions).max() <= 0.5 * 10 ** -decimals + 1e-6
    assert strings.decode(strings.encode(torch.tensor(actions)))[0].tolist() == decoded.tolist()


def test_round_trip_through_the_text_tokenizer(strings):
    tokenizer = build_char_tokenizer()
    text = ' ' + strings.encode(np.array([[0.25, -0.75], [0.5, 0.5], [-1.0, 1.0]]))
    ids = tokenizer(text, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    decoded, repairs = strings.decode(tokenizer.decode(ids, skip_special_tokens=True))
    assert repairs == 0 and decoded.tolist() == [[0.25, -0.75], [0.5, 0.5], [-1.0, 1.0]]


@pytest.mark.parametrize('text, expected, repairs', [
    ('0.1 0.2;0.3;0.5 0.6', [[0.1, 0.2], [0.3, 0.2], [0.5, 0.6]], 1),        # short step: value from the step before
    ('0.1 0.2 0.9;0.3 0.4;0.5 0.6', [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], 1),  # extra value dropped
    ('0.1 0.2;0.3 0.4', [[0.1, 0.2], [0.3, 0.4], [0.3, 0.4]], 1),            # missing step repeats the last
    ('0.1 0.2 0.3 0.4 0.5 0.6', [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], 1),    # lost separators
    ('0.1 0.2;0.3 0.4;0.5 0.6;0.7 0.8', [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], 1),  # extra step dropped
    ('x0.1y 0.2;abc;0.3 0.4|0.5 0.6', [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], 1),    # junk ignored, '|' separates
    ('1.5 -3;.5 +0.25;0.0 0.0', [[1.0, -1.0], [0.5, 0.25], [0.0, 0.0]], 2),        # clipped
    ('', [[0.0, 0.0]] * 3, 3),
    ('0.1 0.2;;0.3 0.4;0.5 0.6', [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], 0),          # empty step skipped
    ('0.-0.-.', [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], 2),                           # '0.', '-0.' = one step
])
def test_malformed_text_is_repaired(strings, text, expected, repairs):
    decoded, count = strings.decode(text)
    np.testing.assert_allclose(decoded, np.array(expected, dtype=np.float32))
    assert count == repairs


def test_encode_checks_shape(strings):
    with pytest.raises(ValueError, match=r'\(1..3, 2\)'):
        strings.encode(np.zeros((4, 2)))
