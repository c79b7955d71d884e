"""maps_vla.data."""
