"""Errors shared by the I/O edges and the services that call them."""


class DependencyUnavailable(Exception):
    """Cassandra or Kafka could not serve the request; the message says what to check."""


class RequestRejected(Exception):
    """Cassandra refused a request as such (bad value, schema mismatch): retrying the same
    request cannot succeed."""
