"""Independent reference computations (skyfield) used to produce and check golden files."""
