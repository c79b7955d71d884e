#!/bin/bash
# Source ROS and the workspace (franka_ros2 + maps_vla), then run the command.
set -e
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /ws/install/setup.bash
exec "$@"
