"""`maps-vla overfit`: collect a few demos, train on them, replay their seeds, gate on the replay rate."""

import importlib
import json

import pytest

from maps_vla.cli import main
from maps_vla.eval.overfit import OverfitConfig, OverfitResult, run_overfit
from maps_vla.train.configuration_train import TrainConfig


@pytest.mark.slow
def test_overfit_runs_end_to_end_and_reports(tmp_path, capsys):
    """The smallest setting: 1 demo, 2 steps, replayed as the prior is evaluated (temporal ensemble). It must run
    and report, not succeed (threshold 0 passes any rate)."""
    out = tmp_path / 'of'
    rc = main(['overfit', '--episodes', '1', '--image-size', '32', '--steps', '2', '--max-steps', '120',
               '--smoothing', 'temporal_ensemble', '--videos', '0', '--threshold', '0', '--out', str(out),
               'batch_size=2', 'progress=false'])
    assert rc == 0
    text = capsys.readouterr().out
    assert 'overfit-then-replay: ' in text and 'training seeds replayed' in text and 'health at step 2' in text
    summary = json.loads((out / 'overfit.json').read_text())
    assert summary['episodes'] == 1 and summary['train_steps'] == 2 and summary['camera_side'] == 32
    assert summary['smoothing'] == 'temporal_ensemble'
    assert summary['successes'] in (0, 1) and summary['passed'] and summary['health']['step'] == 2
    assert (out / 'replay' / 'report.md').is_file() and (out / 'train' / 'policy' / 'config.json').is_file()
    # the demos are kept; running again into the same folder asks for --data and the seeds
    assert main(['overfit', '--episodes', '1', '--out', str(out), 'batch_size=2']) == 1
    assert '--data' in capsys.readouterr().err


class _Trained(Exception):
    pass


def _recorded(root):
    import numpy as np

    from maps_vla.data.writer import DatasetWriter
    features = {'observation.images.third_person': {'dtype': 'image', 'shape': (16, 16, 3), 'names': None},
                'action': {'dtype': 'float32', 'shape': (7,), 'names': None}}
    with DatasetWriter.create(root, fps=10, features=features, video=False) as writer:
        for _ in range(2):
            writer.add_frame({'observation.images.third_person': np.zeros((16, 16, 3), np.uint8),
                              'action': np.zeros(7, np.float32)}, task='pick up the cube')
            writer.save_episode()
    return root


def test_recorded_demos_are_trained_on_fresh(tmp_path, monkeypatch):
    recorded = _recorded(tmp_path / 'demos')
    seen = {}

    def fake_train(cfg):
        seen.update(root=cfg.data.root, out=cfg.out_dir, resume=cfg.resume, steps=cfg.steps)
        raise _Trained

    monkeypatch.setattr(importlib.import_module('maps_vla.train.trainer'), 'train', fake_train)
    cfg = OverfitConfig(data=str(recorded), seeds=(4, 7), out=str(tmp_path / 'of'))
    with pytest.raises(_Trained):
        run_overfit(cfg, TrainConfig(steps=9, resume=True))
    assert seen == {'root': str(recorded), 'out': str(tmp_path / 'of' / 'train'), 'resume': False, 'steps': 9}


@pytest.mark.parametrize('successes, code', [(5, 0), (4, 3)])
def test_exit_code_gates_on_the_threshold(tmp_path, monkeypatch, capsys, successes, code):
    def fake_run(cfg, train_cfg):
        report = type('Report', (), {'to_markdown': lambda self: '| table |'})()
        trained = type('Trained', (), {'steps': train_cfg.steps, 'health': None})()
        return OverfitResult(list(range(5)), successes, (0.0, 1.0), cfg.threshold, trained, report)

    monkeypatch.setattr(importlib.import_module('maps_vla.eval.overfit'), 'run_overfit', fake_run)
    assert main(['overfit', '--out', str(tmp_path), '--steps', '7']) == code
    line = capsys.readouterr().out.splitlines()[-2]
    assert line.startswith(f'overfit-then-replay: {successes}/5') and 'after 7 steps' in line
    assert line.endswith('PASS' if code == 0 else 'FAIL')


def test_bad_arguments_exit_2(capsys):
    assert main(['overfit', '--data', 'somewhere']) == 2
    assert 'seeds' in capsys.readouterr().err
    assert main(['overfit', '--variant', 'nope']) == 2
    assert main(['overfit', '--threshold', '1.5']) == 2
    with pytest.raises(ValueError, match='OverfitConfig.smoothing'):
        OverfitConfig(smoothing='blend')
    with pytest.raises(SystemExit):
        main(['overfit', '--data', 'x', '--seeds', '1,a'])
