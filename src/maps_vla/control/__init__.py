"""maps_vla.control."""
