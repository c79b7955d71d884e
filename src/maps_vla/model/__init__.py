"""maps_vla.model."""
