"""Test infrastructure that is not part of the product: the Apache Kafka cluster."""
