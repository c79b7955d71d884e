"""maps_vla: MAPS fine-tuning of Vision-Language-Action policies and their ROS 2 deployment on a Franka arm."""

__version__ = '0.1.0'
