"""One module per concern of the definition model; ``shared.definitions.model``
re-exports them and holds the kind registry."""
