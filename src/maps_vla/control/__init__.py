"""maps_vla.control: the ROS-free robot runtime.

Modules (import them directly; nothing here is imported eagerly):
    msg_conversion  ROS message <-> numpy for rclpy messages and rosbags dataclasses alike
    camera          frame preprocessing to the policy resolution; OpenCV VideoCapture source
    policy_runner   any BasePolicy off the caller's thread -> time-stamped ActionChunks
    smoothing       chunk blending (temporal ensemble, crossfade), interpolation, v/a/j limits, hold
    safety          bounded Cartesian / joint targets, watchdog, e-stop, gripper commands
    bag_io          ROS 2 bags (sqlite3, MCAP) with rosbags
    pipeline        offline replay of a bag through all of the above (`maps-vla replay`)
    proprio         observation.state from live joint states and the EE pose (sim layout or joint positions)
    recorder        live inputs -> LeRobot episodes at the dataset fps (recorder node, bag2episodes)
    bag_episodes    a recorded teleop bag -> LeRobot episodes (`maps-vla bag2episodes`)
    ros_params      flat config dataclasses <-> ROS 2 parameter specs, rclpy-free
    node_config     wiring configs of the ROS nodes that no plain class owns (camera source, policy, bridge IO)
"""
