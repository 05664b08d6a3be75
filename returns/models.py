"""Returns: filled in by its own issue; the app exists so that the layout is stable."""
