"""pin: ignition.lock — lock a manifest, check it, provision exactly what it pins."""
