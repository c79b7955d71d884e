"""maps_vla.sim."""
