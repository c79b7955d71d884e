"""`maps-vla demo`: the smallest setting end to end, the report's reading of the numbers, sizes and guards."""

import re
from pathlib import Path

import av
import pytest

from maps_vla.cli import main
from maps_vla.demo import DEMO_SIZES, DemoConfig, demo_config
from maps_vla.demo.pipeline import BASELINE_ROWS, METHOD_ROWS, START_ROW, DemoResult
from maps_vla.demo.report import success_table, verdict
from maps_vla.eval import EpisodeResult, EvalReport, Outcome, Split, VariantResult

REPORT_FILES = ('summary.md', 'success.md', 'success_rate.png', 'lambda_table.txt', 'drift.md', 'drift.png',
                'rollout.mp4')


@pytest.mark.slow
def test_smallest_demo_runs_the_loop_and_writes_its_report(tmp_path, capsys):
    out = tmp_path / 'demo'
    assert main(['demo', '--size', 'smallest', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    for path in REPORT_FILES:
        assert (out / path).stat().st_size > 100, path
    for method in ('maps', 'fft'):
        assert (out / 'train' / method / 'policy' / 'model.safetensors').exists()
    assert (out / 'start_policy' / 'model.safetensors').exists()
    from maps_vla.demo.report import slug
    for row in (METHOD_ROWS['maps'], METHOD_ROWS['fft'], START_ROW, *BASELINE_ROWS):
        assert (out / 'eval' / slug(row) / 'report.md').exists(), row
    summary = (out / 'summary.md').read_text()
    assert summary in printed and 'MAPS λ per module' in printed.split('[3/5]')[0]  # λ table before training
    assert '| scripted expert |' in summary and '| random |' in summary and 'ood_shape: new task' in summary
    assert 'vision_backbone.featurizer.encoder.layer.0' in (out / 'drift.md').read_text()
    with av.open(str(out / 'rollout.mp4')) as video:
        assert video.streams.video[0].frames > 1
    # The verdict is worded from the measured numbers: the expert row shows the scale of 10 episodes per variant.
    expert_row = next(line for line in summary.splitlines() if line.startswith('| scripted expert |'))
    assert expert_row.count('/10 = ') == 3, expert_row
    # It fine-tunes the shipped prior, and something it fine-tuned succeeds on the new variant (measured when the
    # prior shipped: MAPS 6/10, AdamW 7/10 on ood_shape; docs/results/prior.md)
    assert 'the pretrained prior shipped in the package' in summary
    new_variant = [int(re.search(r'^\| [^|]+ \| (\d+)/10', line).group(1)) for line in summary.splitlines()
                   if line.startswith((f'| {METHOD_ROWS["maps"]} |', f'| {METHOD_ROWS["fft"]} |'))]
    assert len(new_variant) == 2 and sum(new_variant) > 0, summary


@pytest.mark.slow
def test_demo_fine_tunes_a_checkpoint_folder_at_its_camera_size(tmp_path):
    """start=<folder>: the checkpoint is copied as the start policy and the demos render at the size it recorded."""
    import dataclasses

    from maps_vla.data.dataset import Dataset
    from maps_vla.demo import run_demo
    from maps_vla.model import make_policy, make_policy_config

    config = make_policy_config('tiny')
    config = config.replace(vision=dataclasses.replace(config.vision, capture_size=40))
    make_policy(config).save_pretrained(tmp_path / 'ckpt')
    cfg = demo_config(start=str(tmp_path / 'ckpt'), out=str(tmp_path / 'demo'), episodes=1, steps=1, batch_size=2,
                      eval_episodes=1, eval_max_steps=3, methods=('maps',), retention_variant=None)
    result = run_demo(cfg, progress=False)
    assert Dataset(tmp_path / 'demo' / 'data').features['observation.images.wrist']['shape'][:2] == [40, 40]
    assert list(result.reports) == [METHOD_ROWS['maps'], START_ROW, *BASELINE_ROWS]
    assert f'**Starting policy**: `{tmp_path / "ckpt"}`' in result.summary
    with pytest.raises(FileNotFoundError, match='not a checkpoint folder'):
        run_demo(dataclasses.replace(cfg, start=str(tmp_path)), progress=False)
    # the jobs ran in 2 worker processes (the default); one after another in this process they give the same run
    assert cfg.workers == 2
    serial = run_demo(dataclasses.replace(cfg, out=str(tmp_path / 'serial'), workers=1), progress=False)
    assert serial.losses == result.losses
    assert [[e.outcome for v in r.variants for e in v.episodes] for r in serial.reports.values()] == \
        [[e.outcome for v in r.variants for e in v.episodes] for r in result.reports.values()]


def test_demo_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / 'precious.txt').write_text('keep me')
    assert main(['demo', '--start', 'random', '--out', str(tmp_path), '--steps', '1']) == 1
    assert 'not a maps-vla demo folder' in capsys.readouterr().err
    assert (tmp_path / 'precious.txt').read_text() == 'keep me'


def test_demo_rejects_bad_options(tmp_path, capsys):
    assert main(['demo', '--size', 'huge', '--out', str(tmp_path)]) == 2
    assert "Unknown demo size 'huge'. Known: gpu, small, smallest" in capsys.readouterr().err
    assert main(['demo', '--size', 'smalest', '--out', str(tmp_path)]) == 2
    assert "Did you mean 'smallest'" in capsys.readouterr().err
    assert main(['demo', '--steps', '0', '--out', str(tmp_path)]) == 2
    assert 'DemoConfig.steps' in capsys.readouterr().err


def test_sizes():
    assert DEMO_SIZES.names() == ['gpu', 'small', 'smallest']
    smallest, gpu = demo_config('smallest'), demo_config('gpu', steps=5, device=None)
    assert smallest == DemoConfig() and smallest.device == 'cpu' and smallest.threads == 1
    assert smallest.start == 'prior' and smallest.methods == ('maps', 'fft')
    small = demo_config('small')
    assert small.start == 'prior' and small.image_size is None  # the prior's camera size
    assert gpu.start == 'random' and gpu.model == 'small' and gpu.device == 'cuda' and gpu.steps == 5
    assert gpu.mixed_precision == 'bf16'
    with pytest.raises(ValueError, match='multiple of 14'):
        demo_config(policy_image_size=30)
    with pytest.raises(ValueError, match='must differ'):
        demo_config(ood_variant='train')
    with pytest.raises(ValueError, match='methods'):
        demo_config(methods=('sgd',))
    with pytest.raises(ValueError, match="eval_smoothing must be None or one of .*'crossfade'"):
        demo_config(eval_smoothing='act')
    with pytest.raises(ValueError, match='DemoConfig.norm_stats must be one of'):
        demo_config(norm_stats='prior')


def _report(successes: dict[str, int], n: int = 10) -> EvalReport:
    def episodes(k):
        return [EpisodeResult(seed=i, outcome=Outcome.SUCCESS if i < k else Outcome.TIMEOUT, steps=5, reward=0.0,
                              inferences=1, infer_seconds=0.0, instruction='x') for i in range(n)]
    return EvalReport([VariantResult(v, Split.ID if v == 'ood_shape' else Split.OOD, episodes(k))
                       for v, k in successes.items()], fps=10.0)


def _result(rows: dict[str, tuple[int, int, int]], losses, start='prior'):
    reports = {name: _report(dict(zip(('ood_shape', 'train', 'ood_lighting'), k))) for name, k in rows.items()}
    fine_tuned = [name for name in rows if name in METHOD_ROWS.values()]
    return DemoResult(config=DemoConfig(start=start), out=Path('.'), demos=20, demo_frames=1000, expert_attempts=20,
                      num_params=336_039, lambda_table='', losses={name: losses for name in fine_tuned},
                      reports=reports, drift={}, seconds={})


def _rows(maps, fft, start=(0, 9, 7), expert=(10, 10, 9), random_=(0, 0, 0)):
    return {METHOD_ROWS['maps']: maps, METHOD_ROWS['fft']: fft, START_ROW: start, BASELINE_ROWS[0]: expert,
            BASELINE_ROWS[1]: random_}


def test_verdict_reads_the_numbers():
    result = _result(_rows((7, 8, 6), (8, 2, 1)), [1.0] * 9 + [0.2])
    table = success_table(result.reports, {'ood_shape': 'new task (fine-tuned on)', 'train': 'retention',
                                           'ood_lighting': 'held out (OOD)'})
    assert f'| {METHOD_ROWS["maps"]} | 7/10 = 70% [' in table and '| ood_shape: new task (fine-tuned on) |' in table
    text = verdict(result)
    assert 'MAPS fine-tuned: ood_shape 7/10, train 8/10, ood_lighting 6/10 (loss 1 -> 0.2)' in text
    assert ('It started from the pretrained prior, which before fine-tuning scored 0/10 on ood_shape and 9/10 on '
            'train, 7/10 on ood_lighting') in text
    folder = verdict(_result(_rows((7, 8, 6), (8, 2, 1)), [1.0] * 10, start='runs/my_prior/policy'))
    assert 'It started from runs/my_prior/policy, which before fine-tuning scored 0/10' in folder
    assert 'expert (privileged state, the ceiling) succeeded in 10/10' in text and 'Wilson' in text
    none = verdict(_result(_rows((0, 0, 0), (0, 0, 0)), [1.0] * 10))
    assert 'check of the machinery, not a result' in none


@pytest.mark.slow
def test_gpu_model_size_builds_and_trains_on_cpu(tmp_path):
    from maps_vla.demo import run_demo

    cfg = demo_config('gpu', out=str(tmp_path / 'gpu'),
                      device='cpu', mixed_precision='no', episodes=2, steps=2, batch_size=2, eval_episodes=1,
                      eval_max_steps=5, methods=('maps',), retention_variant=None)
    result = run_demo(cfg, progress=False)
    assert result.num_params > 10_000_000 and len(result.losses[METHOD_ROWS['maps']]) == 2
    assert (tmp_path / 'gpu' / 'summary.md').exists() and 'language_model.model.layers.3' in result.lambda_table
