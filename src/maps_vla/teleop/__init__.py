"""maps_vla.teleop."""
