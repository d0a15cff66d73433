"""Cassandra: the session with its routing and consistency profiles, and the stores."""
