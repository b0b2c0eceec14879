"""HiveMind hub."""
