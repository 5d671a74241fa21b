"""Exporters of our runs into outside formats (MLPerf LoadGen's logs)."""
