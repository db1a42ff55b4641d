"""Visitor & vehicle passes (design/passes.md): services over a Session, no Flask state."""
