"""The library every slawatch service imports: settings, schemas, topics, Kafka and
database factories, ORM models, migrations, metrics, logging and the embedded
infrastructure launcher."""
