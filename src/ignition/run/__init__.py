"""Running the pod: the services Ignition starts, and the supervisor that keeps them up."""
