"""The I/O edges: Cassandra, Kafka and the payment gateway, behind the ports of the service."""
