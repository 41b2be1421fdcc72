"""Estimators over recorded runs (stability, changepoints, tails, attribution): see the analysis issues."""
