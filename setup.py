"""maps_vla: one ament_python ROS 2 package that also installs with plain pip (src layout)."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'maps_vla'

# ROS nodes (src/maps_vla/ros/<x>_node.py); each is also a `ros2 run maps_vla <x>_node` executable.
NODES: list[str] = ['camera_node', 'policy_node', 'smoother_node', 'franka_bridge_node', 'mujoco_bridge_node',
                    'recorder_node', 'teleop_node', 'episode_runner_node']

setup(
    name=PACKAGE,
    version='0.1.0',
    package_dir={'': 'src'},
    packages=find_packages('src', exclude=['test']),
    package_data={PACKAGE: ['py.typed', 'sim/assets/*', 'sim/assets/**/*', 'assets/prior/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (os.path.join('share', PACKAGE, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', PACKAGE, 'config'), glob('config/*.yaml')),
        (os.path.join('share', PACKAGE, 'config', 'train'), glob('config/train/*.yaml')),
        (os.path.join('share', PACKAGE, 'config', 'experiment'), glob('config/experiment/*.yaml')),
    ],
    python_requires='>=3.10',
    install_requires=[
        'numpy>=1.24',
        'pyyaml>=6',
        # Install torch==2.13.0 (or your CUDA build) first; this range accepts it without pulling CUDA wheels.
        'torch>=2.4',
        'safetensors>=0.4',
        # The real floors: the model needs transformers 5's module layout (model/_requirements.py checks it at
        # import); the trainer's FSDP2 path is tested on accelerate 1.15 and 1.16.
        # Exact tested versions: constraints.txt.
        'transformers>=5.18,<6',
        'packaging>=23',
        'peft>=0.13',
        'accelerate>=1.15',
        'tqdm>=4.60',
        'tensorboard>=2.14',
        'matplotlib>=3.7',
        'pyarrow>=14',
        'rosbags>=0.10',
        'mujoco==4.0.0',
        'opencv-python-headless>=4.8',
        'av>=12',
        'pillow>=10',
    ],
    extras_require={'dev': ['pytest>=8', 'lerobot-doctor==0.2.0']},  # lerobot-doctor: independent dataset check
    zip_safe=True,
    maintainer='maps_vla maintainers',
    maintainer_email='maintainers@maps-vla.dev',
    description='MAPS fine-tuning of VLA policies and their ROS 2 deployment on Franka (real or MuJoCo).',
    license='Apache-2.0',
    entry_points={
        'console_scripts': ['maps-vla = maps_vla.cli:main']
        + [f'{node} = {PACKAGE}.ros.{node}:main' for node in NODES],
    },
)
