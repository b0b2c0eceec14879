"""HiveMind wire protocol."""
