"""Thin rclpy nodes over control/, sim/ and teleop/. Nothing else in maps_vla imports this package."""
