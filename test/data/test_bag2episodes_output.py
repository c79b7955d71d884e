"""bag2episodes writes a new dataset in a hidden sibling folder and moves it to --out only when episodes were
saved: a bag that yields none leaves nothing behind (and the CLI exits 1), so the rerun is not blocked."""

import importlib.util
from pathlib import Path

from maps_vla.cli import main as cli_main
from maps_vla.control.bag_episodes import bag_to_episodes
from maps_vla.data import Dataset


def _bag_test_module():
    path = Path(__file__).resolve().parents[1] / 'control' / 'test_bag_episodes.py'
    spec = importlib.util.spec_from_file_location('maps_vla_test_bag_episodes', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zero_episodes_leave_no_dataset(tmp_path, capsys):
    bags = _bag_test_module()
    bags.write_teleop_bag(tmp_path / 'bag', events=[(0.2, 'start'), (0.6, 'discard')])
    report = bag_to_episodes(tmp_path / 'bag', tmp_path / 'ds', bags.CFG)
    assert report.segments == 1 and report.episodes == []
    assert not (tmp_path / 'ds').exists() and not (tmp_path / '.ds.partial').exists()
    args = ['bag2episodes', str(tmp_path / 'bag'), '--out', str(tmp_path / 'ds'), '--set', 'recorder.video=false',
            '--set', 'recorder.image_width=32', '--set', 'recorder.image_height=24',
            '--set', 'joint_states_topics=[franka/joint_states, franka_gripper/joint_states]']
    assert cli_main(args) == 1
    assert not (tmp_path / 'ds').exists()


def test_saved_episodes_are_moved_into_place_as_v3(tmp_path):
    bags = _bag_test_module()
    bags.write_teleop_bag(tmp_path / 'bag', events=[(0.2, 'start'), (0.75, 'stop')])
    report = bag_to_episodes(tmp_path / 'bag', tmp_path / 'ds', bags.CFG)
    assert report.episodes == [0] and report.frames == [5]
    ds = Dataset(tmp_path / 'ds')
    assert ds.version == 'v3.0' and ds.num_episodes == 1 and not (tmp_path / '.ds.partial').exists()
