"""Pure-numpy item response theory: models, estimators, selection, stopping, simulation."""
