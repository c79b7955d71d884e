"""Bad arguments give one clear line and a non-zero exit, not a traceback (issue: collect --task nope, ...)."""

import pytest

from maps_vla.cli import main


@pytest.mark.parametrize('args, message', [
    (['--task', 'nope'], "Unknown sim task 'nope'"),
    (['--variant', 'nope'], "EnvConfig.variant 'nope' is not a variant"),
    (['--image-size', '0'], 'EnvConfig.image_size must be'),
    (['--control-hz', '0'], 'EnvConfig.control_hz and physics_hz must be > 0'),
])
def test_bad_collect_arguments_are_one_line(tmp_path, capsys, args, message):
    assert main(['collect', '--out', str(tmp_path / 'ds'), '--episodes', '1', *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('maps-vla collect: error: ') and message in err[0]
    assert not (tmp_path / 'ds').exists()


def test_verbose_keeps_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="Unknown sim task 'nope'"):
        main(['-v', 'collect', '--out', str(tmp_path / 'ds'), '--task', 'nope'])


def test_accelerate_checkpoint_chatter_is_quiet_unless_verbose(tmp_path):
    import logging

    main(['collect', '--out', str(tmp_path / 'ds'), '--task', 'nope'])
    other = logging.getLogger('accelerate.utils.other')
    tied = other.makeRecord(other.name, logging.WARNING, __file__, 1, 'Removed shared tensor %s while saving.',
                            ({'language_model.lm_head.weight'},), None)
    real = other.makeRecord(other.name, logging.WARNING, __file__, 1, 'Detected kernel version 4.0', (), None)
    assert not other.filter(tied) and other.filter(real)
    assert logging.getLogger('accelerate.checkpointing').getEffectiveLevel() == logging.WARNING
