"""Supermarket checkout: cart and checkout API, Kafka producer and consumer, analytics."""
