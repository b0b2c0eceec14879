"""hmctl."""
