"""test/ros runs its nodes in a ROS graph of its own, never on the domain a robot or sim stack may be running on.

The node tests publish on franka_ros2's topic names (`equilibrium_pose` 5 cm away from the measured pose, joint
trajectories, gripper goals). Run under a sourced ROS 2 on the robot PC, on the robot's ROS_DOMAIN_ID, those messages
reach the real controllers; and a sim.launch.py running on the same domain feeds the tests its own `/action` and
`equilibrium_pose` (on the Jazzy build two node tests failed that way). So, before any rclpy context exists, this
moves the session to a domain other than the inherited one and keeps discovery on this host.
"""

import os

INHERITED_DOMAIN_VAR = 'MAPS_VLA_INHERITED_ROS_DOMAIN_ID'
DOMAINS = range(80, 100)  # within 0-101, the range that is safe with Linux's ephemeral ports


def test_domain(inherited: str, pid: int) -> int:
    """A domain from DOMAINS (spread by process id, so parallel sessions rarely meet) that is not `inherited`."""
    domain = DOMAINS[pid % len(DOMAINS)]
    if inherited.strip() == str(domain):
        domain = DOMAINS[(pid + 1) % len(DOMAINS)]
    return domain


test_domain.__test__ = False  # a helper, not a test
os.environ.setdefault(INHERITED_DOMAIN_VAR, os.environ.get('ROS_DOMAIN_ID', ''))
os.environ['ROS_DOMAIN_ID'] = str(test_domain(os.environ[INHERITED_DOMAIN_VAR], os.getpid()))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'  # Iron and later
if os.environ.get('ROS_DISTRO') == 'humble':
    os.environ['ROS_LOCALHOST_ONLY'] = '1'  # Humble's switch (deprecated, with a warning, from Jazzy on)
