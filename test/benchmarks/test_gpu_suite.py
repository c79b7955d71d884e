"""benchmarks/gpu_suite.py: its CPU dry run writes every section to the JSON and the markdown, and one broken or
hung section cannot lose the others' figures."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'gpu_suite.py'


@pytest.fixture(scope='module')
def suite():
    spec = importlib.util.spec_from_file_location('gpu_suite', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules['gpu_suite'] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_dry_run_writes_every_section(suite, tmp_path):
    out = tmp_path / 'out'
    code = suite.main(['--dry-run', '--out', str(out), '--work', str(tmp_path / 'work')])
    report = json.loads((out / suite.JSON_NAME).read_text())
    sections = report['sections']
    assert list(sections) == list(suite.SECTIONS) and report['meta']['dry_run']
    for name in suite.SECTIONS[:4]:
        assert sections[name]['status'] == 'ok', (name, sections[name].get('log_tail'))
    # The demo's CPU run may outlast its budget on a slow machine; either way its command ran.
    assert sections['demo']['status'] in ('ok', 'timeout'), sections['demo']['results'].get('output_tail')
    assert code == (0 if sections['demo']['status'] == 'ok' else 1)

    opt = sections['optimizer']['results']
    assert set(opt['steps']) == {'AdamW foreach', 'AdamW fused', 'SPDAdam foreach', 'SPDAdam fused',
                                 'SPDAdam fused per-tensor', 'SPDAdam fused no lists', 'SPDAdam fused group<=2^20'}
    assert opt['steps']['AdamW fused']['x_adamw_fused'] == 1.0
    assert all(row['bandwidth_gb_s'] > 0 for row in opt['steps'].values())
    launches = opt['launches']
    grouped, per_tensor = (launches[k]['fused_kernel_calls_per_tensor']
                           for k in ('SPDAdam fused', 'SPDAdam fused per-tensor'))
    assert 0 < grouped < per_tensor  # grouping cuts the compiled-kernel calls per step
    plan = opt['plan_minivla']
    assert plan['tensors'] == plan['grouped_tensors'] + plan['listed_tensors'] + plan['single_tensors']
    assert plan['compiled_calls_per_step_grouped'] < plan['compiled_calls_per_step_per_tensor']

    paths = sections['correctness']['results']['paths']
    assert {'single float32', 'foreach float32', 'fused float32', 'fused per-tensor float32',
            'single bfloat16', 'foreach bfloat16'} <= set(paths)
    assert all(row['passed'] for row in paths.values())
    assert {'fused bfloat16', 'fused lists float32'} <= set(sections['correctness']['skipped'])

    latency = sections['inference']['results']['latency']
    assert {'2 views infer', '2 views eager', '1 views infer', '1 views eager'} <= set(latency)
    assert all(row['actions_per_s'] > 0 for row in latency.values())
    assert sections['inference']['skipped']['2 views cuda graph'] == 'CUDA only'

    throughput = sections['training']['results']['throughput']
    assert len(throughput) == 3 and all(0 < row['optimizer_share'] < 1 for row in throughput.values())
    assert sections['demo']['results']['gpu_arguments_check'] == 'ok'

    md = (out / suite.MD_NAME).read_text()
    for title, _ in suite._MD.values():
        assert f'## {title}' in md
    assert '| SPDAdam fused per-tensor |' in md and '| 2 | eager |' in md and '- skipped `2 views compile`' in md


def test_a_hung_command_is_killed_at_its_budget(suite, tmp_path):
    code, seconds, timed_out, _ = suite._run_logged([sys.executable, '-c', 'import time; time.sleep(60)'],
                                                    tmp_path / 'log', budget=1)
    assert (code, timed_out) == (None, True) and seconds < 30


def test_a_failed_section_keeps_its_partial_results_and_log(suite, tmp_path, monkeypatch):
    def broken(mode, rec, deadline):
        rec.set('steps', {'AdamW fused': 1})
        raise RuntimeError('CUDA out of memory (planted)')

    # The worker is a subprocess, so the broken section is planted through the worker's own entry point.
    rec = suite.Recorder(tmp_path / 'optimizer.json')
    monkeypatch.setitem(suite._SECTION_FUNCTIONS, 'optimizer', broken)
    with pytest.raises(RuntimeError):
        suite.worker('optimizer', suite.DRY, tmp_path, deadline=0)
    data = json.loads(rec.path.read_text())
    assert data['results'] == {'steps': {'AdamW fused': 1}} and 'planted' in data['error']


def test_markdown_renders_failed_and_partial_sections(suite):
    report = {'meta': {'dry_run': False, 'gpu': 'H200'}, 'seconds': 12.0, 'sections': {
        'optimizer': {'status': 'failed', 'seconds': 3, 'budget_s': 150, 'log_tail': 'Traceback: boom',
                      'results': {'plan_minivla': {'tensors': 3, 'projected_tensors': 1, 'grouped_tensors': 2,
                                                   'group_numel': 8, 'groups': 1, 'single_tensors': 1, 'lists': 0,
                                                   'listed_tensors': 0, 'list_size': 8,
                                                   'compiled_calls_per_step_grouped': 2,
                                                   'compiled_calls_per_step_per_tensor': 4}},
                      'skipped': {}},
        'inference': {'status': 'timeout', 'seconds': 150, 'budget_s': 150, 'results': {'setup': {}},
                      'skipped': {'2 views compile': 'section budget spent'}},
        'demo': {'status': 'skipped', 'seconds': 0, 'results': {}, 'skipped': {'demo': 'total budget spent'}}}}
    md = suite.markdown(report)
    assert 'Status: **failed**' in md and 'Traceback: boom' in md and '2 grouped vs 4 per tensor' in md
    assert 'could not render: KeyError' in md and '- skipped `2 views compile`: section budget spent' in md
    assert '- skipped `demo`: total budget spent' in md


def test_out_is_required(suite, monkeypatch, capsys):
    monkeypatch.delenv('OUT', raising=False)
    with pytest.raises(SystemExit):
        suite.main(['--dry-run'])
    assert '--out' in capsys.readouterr().err


@pytest.mark.parametrize('budget', ['nope=30', 'correctness', 'correctness=soon'])
def test_a_bad_section_budget_is_refused_before_anything_runs(suite, tmp_path, budget, capsys):
    with pytest.raises(SystemExit) as exc:
        suite.main(['--dry-run', '--out', str(tmp_path), '--budget', budget])
    assert exc.value.code == 2 and '--budget' in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
