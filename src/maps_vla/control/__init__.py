"""maps_vla.control: the ROS-free robot runtime.

Modules (import them directly; nothing here is imported eagerly):
    msg_conversion  ROS message <-> numpy for rclpy messages and rosbags dataclasses alike
    camera          frame preprocessing to the policy resolution; OpenCV VideoCapture source
    policy_runner   any BasePolicy off the caller's thread -> time-stamped ActionChunks
    smoothing       chunk blending (temporal ensemble, crossfade), interpolation, v/a/j limits, hold
    safety          bounded Cartesian / joint targets, watchdog, e-stop, gripper commands
    bag_io          ROS 2 bags (sqlite3, MCAP) with rosbags
    pipeline        offline replay of a bag through all of the above (`maps-vla replay`)
"""
