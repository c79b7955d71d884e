"""moveit_msgs definitions (comments stripped) for testing the MoveIt / Servo message builders with rosbags.

Source: github.com/moveit/moveit_msgs, tag 2.6.0 (the Jazzy release) for JAZZY; Humble (branch humble, 2.2.x)
differs in this closure only in MotionPlanRequest (cartesian_speed_end_effector_link instead of
cartesian_speed_limited_link) and has neither ServoStatus nor ServoCommandType (HUMBLE_CHANGES).
object_recognition_msgs/ObjectType and octomap_msgs are the two foreign types MoveGroup's goal needs.

Licence of the definitions: moveit_msgs' BSD 3-Clause licence (its LICENSE file): redistribution and use in source
and binary forms, with or without modification, are permitted provided that its three conditions are met; they are
provided "as is", without any warranty. Type names inside the action and service parts are package-qualified here
(rosbags resolves unqualified names in the action's own namespace).
"""

JAZZY = {
    'moveit_msgs/msg/AllowedCollisionEntry': '''\
bool[] enabled''',
    'moveit_msgs/msg/AllowedCollisionMatrix': '''\
string[] entry_names
AllowedCollisionEntry[] entry_values
string[] default_entry_names
bool[] default_entry_values''',
    'moveit_msgs/msg/AttachedCollisionObject': '''\
string link_name
CollisionObject object
string[] touch_links
trajectory_msgs/JointTrajectory detach_posture
float64 weight''',
    'moveit_msgs/msg/BoundingVolume': '''\
shape_msgs/SolidPrimitive[] primitives
geometry_msgs/Pose[] primitive_poses
shape_msgs/Mesh[] meshes
geometry_msgs/Pose[] mesh_poses''',
    'moveit_msgs/msg/CartesianPoint': '''\
geometry_msgs/Pose pose
geometry_msgs/Twist velocity
geometry_msgs/Accel acceleration''',
    'moveit_msgs/msg/CartesianTrajectory': '''\
std_msgs/Header header
string tracked_frame
CartesianTrajectoryPoint[] points''',
    'moveit_msgs/msg/CartesianTrajectoryPoint': '''\
CartesianPoint point
builtin_interfaces/Duration time_from_start''',
    'moveit_msgs/msg/CollisionObject': '''\
std_msgs/Header header
geometry_msgs/Pose pose
string id
object_recognition_msgs/ObjectType type
shape_msgs/SolidPrimitive[] primitives
geometry_msgs/Pose[] primitive_poses
shape_msgs/Mesh[] meshes
geometry_msgs/Pose[] mesh_poses
shape_msgs/Plane[] planes
geometry_msgs/Pose[] plane_poses
string[] subframe_names
geometry_msgs/Pose[] subframe_poses
byte ADD=0
byte REMOVE=1
byte APPEND=2
byte MOVE=3
byte operation''',
    'moveit_msgs/msg/Constraints': '''\
string name
JointConstraint[] joint_constraints
PositionConstraint[] position_constraints
OrientationConstraint[] orientation_constraints
VisibilityConstraint[] visibility_constraints''',
    'moveit_msgs/msg/GenericTrajectory': '''\
std_msgs/Header header
trajectory_msgs/JointTrajectory[] joint_trajectory
moveit_msgs/CartesianTrajectory[] cartesian_trajectory''',
    'moveit_msgs/msg/JointConstraint': '''\
string joint_name
float64 position
float64 tolerance_above
float64 tolerance_below
float64 weight''',
    'moveit_msgs/msg/LinkPadding': '''\
string link_name
float64 padding''',
    'moveit_msgs/msg/LinkScale': '''\
string link_name
float64 scale''',
    'moveit_msgs/msg/MotionPlanRequest': '''\
WorkspaceParameters workspace_parameters
RobotState start_state
Constraints[] goal_constraints
Constraints path_constraints
TrajectoryConstraints trajectory_constraints
GenericTrajectory[] reference_trajectories
string pipeline_id
string planner_id
string group_name
int32 num_planning_attempts
float64 allowed_planning_time
float64 max_velocity_scaling_factor
float64 max_acceleration_scaling_factor
string cartesian_speed_limited_link
float64 max_cartesian_speed''',
    'moveit_msgs/msg/MoveItErrorCodes': '''\
int32 val
int32 SUCCESS=1
int32 UNDEFINED=0
int32 FAILURE=99999
int32 PLANNING_FAILED=-1
int32 INVALID_MOTION_PLAN=-2
int32 MOTION_PLAN_INVALIDATED_BY_ENVIRONMENT_CHANGE=-3
int32 CONTROL_FAILED=-4
int32 UNABLE_TO_AQUIRE_SENSOR_DATA=-5
int32 TIMED_OUT=-6
int32 PREEMPTED=-7
int32 START_STATE_IN_COLLISION=-10
int32 START_STATE_VIOLATES_PATH_CONSTRAINTS=-11
int32 START_STATE_INVALID=-26
int32 GOAL_IN_COLLISION=-12
int32 GOAL_VIOLATES_PATH_CONSTRAINTS=-13
int32 GOAL_CONSTRAINTS_VIOLATED=-14
int32 GOAL_STATE_INVALID=-27
int32 UNRECOGNIZED_GOAL_TYPE=-28
int32 INVALID_GROUP_NAME=-15
int32 INVALID_GOAL_CONSTRAINTS=-16
int32 INVALID_ROBOT_STATE=-17
int32 INVALID_LINK_NAME=-18
int32 INVALID_OBJECT_NAME=-19
int32 FRAME_TRANSFORM_FAILURE=-21
int32 COLLISION_CHECKING_UNAVAILABLE=-22
int32 ROBOT_STATE_STALE=-23
int32 SENSOR_INFO_STALE=-24
int32 COMMUNICATION_FAILURE=-25
int32 CRASH=-29
int32 ABORT=-30
int32 NO_IK_SOLUTION=-31
string message
string source''',
    'moveit_msgs/msg/ObjectColor': '''\
string id
std_msgs/ColorRGBA color''',
    'moveit_msgs/msg/OrientationConstraint': '''\
std_msgs/Header header
geometry_msgs/Quaternion orientation
string link_name
float64 absolute_x_axis_tolerance
float64 absolute_y_axis_tolerance
float64 absolute_z_axis_tolerance
uint8 parameterization
uint8 XYZ_EULER_ANGLES=0
uint8 ROTATION_VECTOR=1
float64 weight''',
    'moveit_msgs/msg/PlanningOptions': '''\
PlanningScene planning_scene_diff
bool plan_only
bool look_around
int32 look_around_attempts
float64 max_safe_execution_cost
bool replan
int32 replan_attempts
float64 replan_delay''',
    'moveit_msgs/msg/PlanningScene': '''\
string name
RobotState robot_state
string robot_model_name
geometry_msgs/TransformStamped[] fixed_frame_transforms
AllowedCollisionMatrix allowed_collision_matrix
LinkPadding[] link_padding
LinkScale[] link_scale
ObjectColor[] object_colors
PlanningSceneWorld world
bool is_diff''',
    'moveit_msgs/msg/PlanningSceneWorld': '''\
CollisionObject[] collision_objects
octomap_msgs/OctomapWithPose octomap''',
    'moveit_msgs/msg/PositionConstraint': '''\
std_msgs/Header header
string link_name
geometry_msgs/Vector3 target_point_offset
BoundingVolume constraint_region
float64 weight''',
    'moveit_msgs/msg/RobotState': '''\
sensor_msgs/JointState joint_state
sensor_msgs/MultiDOFJointState multi_dof_joint_state
AttachedCollisionObject[] attached_collision_objects
bool is_diff''',
    'moveit_msgs/msg/RobotTrajectory': '''\
trajectory_msgs/JointTrajectory joint_trajectory
trajectory_msgs/MultiDOFJointTrajectory multi_dof_joint_trajectory''',
    'moveit_msgs/msg/TrajectoryConstraints': '''\
Constraints[] constraints''',
    'moveit_msgs/msg/VisibilityConstraint': '''\
float64 target_radius
geometry_msgs/PoseStamped target_pose
int32 cone_sides
geometry_msgs/PoseStamped sensor_pose
float64 max_view_angle
float64 max_range_angle
uint8 SENSOR_Z=0
uint8 SENSOR_Y=1
uint8 SENSOR_X=2
uint8 sensor_view_direction
float64 weight''',
    'moveit_msgs/msg/WorkspaceParameters': '''\
std_msgs/Header header
geometry_msgs/Vector3 min_corner
geometry_msgs/Vector3 max_corner''',
    'moveit_msgs/msg/ServoStatus': '''\
int8 code
string message
int8 INVALID = -1
int8 NO_WARNING = 0
int8 DECELERATE_FOR_APPROACHING_SINGULARITY = 1
int8 HALT_FOR_SINGULARITY = 2
int8 DECELERATE_FOR_LEAVING_SINGULARITY = 3
int8 DECELERATE_FOR_COLLISION = 4
int8 HALT_FOR_COLLISION = 5
int8 JOINT_BOUND = 6''',
    'moveit_msgs/action/MoveGroup_Goal': '''\
moveit_msgs/MotionPlanRequest request
moveit_msgs/PlanningOptions planning_options''',
    'moveit_msgs/action/MoveGroup_Result': '''\
moveit_msgs/MoveItErrorCodes error_code
moveit_msgs/RobotState trajectory_start
moveit_msgs/RobotTrajectory planned_trajectory
moveit_msgs/RobotTrajectory executed_trajectory
float64 planning_time''',
    'moveit_msgs/action/MoveGroup_Feedback': '''\
string state''',
    'moveit_msgs/srv/ServoCommandType_Request': '''\
int8 JOINT_JOG = 0
int8 TWIST = 1
int8 POSE = 2
int8 command_type''',
    'moveit_msgs/srv/ServoCommandType_Response': '''\
bool success''',
    'object_recognition_msgs/msg/ObjectType': '''\
string key
string db''',
    'octomap_msgs/msg/Octomap': '''\
std_msgs/Header header
bool binary
string id
float64 resolution
int8[] data''',
    'octomap_msgs/msg/OctomapWithPose': '''\
std_msgs/Header header
geometry_msgs/Pose origin
octomap_msgs/Octomap octomap''',
}

HUMBLE_CHANGES = {
    'moveit_msgs/msg/MotionPlanRequest': '''\
WorkspaceParameters workspace_parameters
RobotState start_state
Constraints[] goal_constraints
Constraints path_constraints
TrajectoryConstraints trajectory_constraints
GenericTrajectory[] reference_trajectories
string pipeline_id
string planner_id
string group_name
int32 num_planning_attempts
float64 allowed_planning_time
float64 max_velocity_scaling_factor
float64 max_acceleration_scaling_factor
string cartesian_speed_end_effector_link
float64 max_cartesian_speed''',
}

# ------------------------------------------------------------------------------------------------ helpers
import numpy as np  # noqa: E402
from rosbags.typesys import Stores, get_typestore, get_types_from_msg  # noqa: E402
from rosbags.typesys.base import Nodetype  # noqa: E402

_NUMERIC = {'bool': np.bool_, 'byte': np.uint8, 'char': np.uint8, 'int8': np.int8, 'uint8': np.uint8,
            'int16': np.int16, 'uint16': np.uint16, 'int32': np.int32, 'uint32': np.uint32, 'int64': np.int64,
            'uint64': np.uint64, 'float32': np.float32, 'float64': np.float64}


def typestore(distro: str = 'jazzy'):
    """The ROS 2 Jazzy typestore of rosbags plus the moveit_msgs types above (Humble's where they differ)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    defs = dict(JAZZY)
    if distro == 'humble':
        defs.update(HUMBLE_CHANGES)
        for name in [n for n in defs if 'Servo' in n]:
            del defs[name]
    types = {}
    for name, text in defs.items():
        # rosbags files a 'pkg/srv/Name_Request' under 'pkg/srv/msg/Name_Request': keep the ROS 2 name
        types.update({k.replace('/srv/msg/', '/srv/'): v for k, v in get_types_from_msg(text, name).items()})
    store.register(types)
    return store


class Defaulting:
    """Message types like rclpy's: a class called with some fields gets every other field's default.

    rosbags dataclasses need every field; rclpy messages default the ones not given. `types(name)(**fields)`
    raises TypeError for a field the definition lacks, as rclpy does.
    """

    def __init__(self, store) -> None:
        self.store = store

    def __call__(self, name: str):
        cls = self.store.types[name]
        fields = self.store.fielddefs[name][1]

        def make(**given):
            unknown = set(given) - {f for f, _ in fields}
            if unknown:
                raise TypeError(f'{name} has no fields {sorted(unknown)}')
            return cls(**{f: given[f] if f in given else self.default(desc) for f, desc in fields})
        return make

    def default(self, desc):
        kind, detail = desc
        if kind == Nodetype.BASE:
            base = detail[0]
            return '' if base in ('string', 'wstring') else (False if base == 'bool' else
                                                             (0.0 if base.startswith('float') else 0))
        if kind == Nodetype.NAME:
            return self(detail)()
        sub, length = detail
        if sub[0] == Nodetype.BASE and sub[1][0] in _NUMERIC:
            return np.zeros(length if kind == Nodetype.ARRAY else 0, dtype=_NUMERIC[sub[1][0]])
        return [self.default(sub) for _ in range(length)] if kind == Nodetype.ARRAY else []
