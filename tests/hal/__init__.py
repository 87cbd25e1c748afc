"""HAL tests: drivers against their simulator twins, faults, and real Hamlib peers."""
