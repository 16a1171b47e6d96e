"""The embedding API: the names other programs use after ``import charter``."""
from __future__ import annotations

__all__: list[str] = []
