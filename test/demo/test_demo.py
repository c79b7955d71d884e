"""`maps-vla demo`: the smallest setting end to end, the report's reading of the numbers, sizes and guards."""

from pathlib import Path

import av
import pytest

from maps_vla.cli import main
from maps_vla.demo import DEMO_SIZES, DemoConfig, demo_config
from maps_vla.demo.pipeline import POLICY_ROWS, DemoResult
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
    assert (out / 'train' / 'policy' / 'model.safetensors').exists()
    assert (out / 'start_policy' / 'model.safetensors').exists()
    for row in POLICY_ROWS:
        assert (out / 'eval' / row.lower().replace(' ', '_') / 'report.md').exists()
    summary = (out / 'summary.md').read_text()
    assert summary in printed and 'MAPS λ per module' in printed.split('[3/5]')[0]  # λ table before training
    assert '| scripted expert |' in summary and '| random |' in summary and 'ood_color' in summary
    assert 'vision_backbone.featurizer.encoder.layer.0' in (out / 'drift.md').read_text()
    with av.open(str(out / 'rollout.mp4')) as video:
        assert video.streams.video[0].frames > 1
    # The verdict is worded from the measured numbers: the expert row must show the scale.
    expert_row = next(line for line in summary.splitlines() if line.startswith('| scripted expert |'))
    assert '/10' in expert_row


def test_demo_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / 'precious.txt').write_text('keep me')
    assert main(['demo', '--out', str(tmp_path), '--steps', '1']) == 1
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
    assert gpu.model == 'small' and gpu.device == 'cuda' and gpu.steps == 5 and gpu.mixed_precision == 'bf16'
    with pytest.raises(ValueError, match='multiple of 14'):
        demo_config(policy_image_size=30)
    with pytest.raises(ValueError, match='held-out'):
        demo_config(ood_variant='train')


def _report(id_successes: int, ood_successes: int, n: int = 10) -> EvalReport:
    def episodes(k):
        return [EpisodeResult(seed=i, outcome=Outcome.SUCCESS if i < k else Outcome.TIMEOUT, steps=5, reward=0.0,
                              inferences=1, infer_seconds=0.0, instruction='x') for i in range(n)]
    return EvalReport([VariantResult('train', Split.ID, episodes(id_successes)),
                       VariantResult('ood_color', Split.OOD, episodes(ood_successes))], fps=10.0)


def _result(trained, expert, random_, losses):
    reports = dict(zip(POLICY_ROWS, (_report(*trained), _report(*expert), _report(*random_))))
    return DemoResult(config=DemoConfig(), out=Path('.'), demos=20, demo_frames=1000, expert_attempts=20,
                      num_params=336_039, lambda_table='', losses=losses, reports=reports, drift=[], seconds={})


def test_verdict_reads_the_numbers():
    table = success_table(_result((3, 1), (10, 9), (0, 0), [1.0]).reports, 'ood_color')
    assert '| MAPS fine-tuned | 3/10 = 30% [' in table and '| OOD (ood_color) |' in table
    none = verdict(_result((0, 0), (10, 9), (0, 0), [1.0] * 9 + [0.2]))
    assert 'none of its 10 ID and 10 OOD episodes' in none and 'not a result' in none
    assert '10/10 ID and 9/10 OOD' in none and 'fell from 1 to 0.2' in none
    some = verdict(_result((3, 1), (10, 9), (0, 0), [1.0] * 10))
    assert 'succeeded in 3/10 ID and 1/10 OOD' in some and 'did not fall much' in some and 'Wilson' in some


@pytest.mark.slow
def test_gpu_model_size_builds_and_trains_on_cpu(tmp_path):
    from maps_vla.demo import run_demo

    cfg = demo_config('gpu', out=str(tmp_path / 'gpu'), device='cpu', mixed_precision='no', episodes=2, steps=2,
                      batch_size=2, eval_episodes=1, eval_max_steps=5)
    result = run_demo(cfg, progress=False)
    assert result.num_params > 10_000_000 and len(result.losses) == 2
    assert (tmp_path / 'gpu' / 'summary.md').exists() and 'language_model.model.layers.3' in result.lambda_table
