"""Bringing items in: QTI packages and spreadsheets, read safely (``irtcat bank import``)."""
