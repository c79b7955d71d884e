import pytest

from maps_vla.model._requirements import MIN_TRANSFORMERS, check_transformers


def test_old_transformers_gets_a_clear_message():
    with pytest.raises(ImportError, match=rf"needs transformers>={MIN_TRANSFORMERS} \(found 4.57.1\): pip install"):
        check_transformers('4.57.1')
    check_transformers(MIN_TRANSFORMERS)
    check_transformers('5.24.0')
