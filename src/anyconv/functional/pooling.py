"""anyconv's pooling ops (to be filled in)."""

__all__: list[str] = []
