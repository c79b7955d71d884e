"""maps_vla.eval."""
