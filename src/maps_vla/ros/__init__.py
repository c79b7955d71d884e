"""maps_vla.ros: the rclpy nodes, thin adapters over control/ and sim/ (nothing outside this package imports it).

Each `<x>_node.py` holds one Node subclass, a `main(args=None)` (the `ros2 run maps_vla <x>_node` entry point) and
`PARAMS`, the flat config dataclasses its parameters come from (read by the static tests without rclpy).
"""
