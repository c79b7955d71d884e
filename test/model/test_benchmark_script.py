"""Smoke test: benchmarks/policy_inference.py runs end to end on the tiny preset (numbers are not checked)."""

import importlib.util
import json
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / 'benchmarks' / 'policy_inference.py'


def test_benchmark_runs_on_tiny(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location('policy_inference', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / 'result.json'
    monkeypatch.setattr(sys, 'argv', ['policy_inference.py', '--preset', 'tiny', '--device', 'cpu', '--iters', '2',
                                      '--warmup', '1', '--train-batch', '2', '--train-steps', '2', '--json', str(out)])
    assert module.main() == 0
    result = json.loads(out.read_text())
    assert set(result['inference']) == {'1', '2'} and result['train']['samples_per_s'] > 0
    assert 'train  views=2 batch=2 adamw' in capsys.readouterr().out
