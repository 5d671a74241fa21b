"""The lean runner: plugin registry, cards, backends, load generator, scenarios and the store."""
