"""maps_vla.train."""
