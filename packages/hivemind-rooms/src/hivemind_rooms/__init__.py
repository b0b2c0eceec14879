"""Attested recall rooms: the confidential room service."""
