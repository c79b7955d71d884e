"""Writer throughput of maps_vla.data as a multiple of real time: 2 cameras at 224x224, 10 fps.

Frames are rendered by MuJoCo before timing (a small textured tabletop with a moving hand and a wrist camera);
the timed part is add_frame for every frame, save_episode for every episode and finalize (after one untimed
warm-up dataset that pays the first-use imports). Real time = frames / fps; PSNR is of the first episode decoded back.
Run: PYTHONPATH=src MUJOCO_GL=egl python benchmarks/dataset_write.py [--episodes 5 --frames 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from maps_vla.data import Dataset, DatasetWriter, VideoConfig, psnr

CAMERAS = ('observation.images.third_person', 'observation.images.wrist')
SIZE = 224
FPS = 10
FEATURES = {
    **{cam: {'dtype': 'video', 'shape': (SIZE, SIZE, 3), 'names': ['height', 'width', 'channels']} for cam in CAMERAS},
    'observation.state': {'dtype': 'float32', 'shape': (8,), 'names': None},
    'action': {'dtype': 'float32', 'shape': (7,), 'names': None},
}


# A small tabletop (checker floor, textured table, cube, plate, a moving "hand" with a wrist camera) rendered
# by MuJoCo, so the frames have the statistics of the sim's renders; rendering is not timed.
_SCENE = """
<mujoco>
  <visual><quality shadowsize="0" offsamples="0"/><global offwidth="224" offheight="224"/></visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1=".25 .3 .35" rgb2=".35 .4 .45" width="256" height="256"/>
    <material name="grid" texture="grid" texrepeat="8 8" reflectance=".1"/>
    <texture name="wood" type="2d" builtin="flat" mark="random" random="0.3" rgb1=".55 .4 .25" rgb2=".5 .35 .2"
             markrgb=".45 .3 .18" width="512" height="512"/>
    <material name="wood" texture="wood" texrepeat="2 2"/>
  </asset>
  <worldbody>
    <light pos="0.5 -0.5 2" dir="-0.2 0.2 -1" diffuse=".8 .8 .8"/>
    <light pos="-1 1 2" dir="0.4 -0.4 -1" diffuse=".3 .3 .3"/>
    <geom type="plane" size="3 3 .1" material="grid"/>
    <geom type="box" pos="0.5 0 0.35" size=".45 .6 .02" material="wood"/>
    <body name="cube" mocap="true" pos="0.5 0 0.39">
      <geom type="box" size=".02 .02 .02" rgba=".9 .1 .1 1" contype="0" conaffinity="0"/></body>
    <body name="plate" mocap="true" pos="0.5 0.25 0.375">
      <geom type="cylinder" size=".07 .004" rgba=".1 .2 .8 1" contype="0" conaffinity="0"/></body>
    <body name="hand" mocap="true" pos="0.4 0 0.6">
      <geom type="capsule" fromto="0 0 0 0 0 .3" size=".03" rgba=".85 .85 .85 1" contype="0" conaffinity="0"/>
      <camera name="wrist" pos=".06 0 -.01" fovy="70"/>
    </body>
    <camera name="third_person" pos="1.4 0 0.95" xyaxes="0 1 0 -.35 0 .94" fovy="50"/>
  </worldbody>
</mujoco>
"""


def render_episodes(count: int, frames: int) -> list[list[dict]]:
    """`count` episodes of `frames` frames: the hand sweeps over the table, the cube slides late in each."""
    import mujoco  # only the benchmark renders

    model = mujoco.MjModel.from_xml_string(_SCENE)
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, SIZE, SIZE)
    rng = np.random.default_rng(0)
    episodes = []
    for e in range(count):
        phase = rng.uniform(0, 2 * np.pi)
        episode = []
        for t in range(frames):
            data.mocap_pos[2] = [0.4 + 0.1 * np.sin(0.05 * t + phase), 0.12 * np.cos(0.04 * t + phase),
                                 0.55 - 0.1 * np.sin(0.03 * t)]
            data.mocap_pos[0] = [0.5, 0.002 * max(0, t - frames // 2), 0.39]
            mujoco.mj_forward(model, data)
            frame = {'observation.state': rng.normal(size=8).astype(np.float32),
                     'action': rng.normal(size=7).astype(np.float32)}
            for cam in CAMERAS:
                renderer.update_scene(data, camera=cam.rsplit('.', 1)[1])
                frame[cam] = renderer.render().copy()
            episode.append(frame)
        episodes.append(episode)
    renderer.close()
    return episodes


def run(name: str, root: Path, episodes: list[list[dict]], **kwargs) -> dict:
    start = time.perf_counter()
    with DatasetWriter.create(root, FPS, FEATURES, **kwargs) as writer:
        for frames in episodes:
            for frame in frames:
                writer.add_frame(frame, task='put the red block on the plate')
            writer.save_episode()
    wall = time.perf_counter() - start
    n = sum(len(e) for e in episodes)
    ds = Dataset(root)
    decoded = ds.get_episode(0)
    quality = min(psnr(decoded[c], np.stack([f[c] for f in episodes[0]])) for c in CAMERAS)
    size = sum(p.stat().st_size for p in root.rglob('*') if p.is_file()) / len(episodes) / 2**20
    return {'mode': name, 'frames': n, 'wall_s': wall, 'x_real_time': n / FPS / wall, 'psnr_db': quality,
            'mb_per_episode': size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=5)
    parser.add_argument('--frames', type=int, default=100, help='frames per episode (100 = 10 s)')
    args = parser.parse_args()
    episodes = render_episodes(args.episodes, args.frames)
    modes = [('mp4 H.264 yuv420p crf18 (default)', dict(video=True)),
             ('mp4 H.264 RGB lossless', dict(video=True, video_config=VideoConfig.lossless())),
             ('PNG (zlib level 1)', dict(video=False))]
    print(f'{args.episodes} episodes x {args.frames} frames, 2 cameras {SIZE}x{SIZE}, {FPS} fps')
    print('| mode | frames | wall s | x real time | min PSNR dB | MB / episode |')
    print('|---|---|---|---|---|---|')
    with tempfile.TemporaryDirectory() as tmp:
        run('warm-up', Path(tmp) / 'warm-up', [episodes[0][:2]])  # first-use imports (pyarrow pulls pandas)
        for i, (name, kwargs) in enumerate(modes):
            r = run(name, Path(tmp) / str(i), episodes, **kwargs)
            print(f"| {r['mode']} | {r['frames']} | {r['wall_s']:.2f} | {r['x_real_time']:.1f} | "
                  f"{r['psnr_db']:.1f} | {r['mb_per_episode']:.2f} |")


if __name__ == '__main__':
    main()
