"""The Headstart operator (kopf). It lands with the operator issue; only the package root exists yet."""
