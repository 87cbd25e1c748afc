"""Orbit data: validated TLE/OMM catalog (and, later, the pass predictor).

``controller.orbit.catalog`` builds a :class:`Catalog` keyed by NORAD id from TLE and
OMM files, reporting every bad record as a :class:`CatalogProblem` instead of raising.
"""

from controller.orbit.catalog import Catalog, CatalogEntry, CatalogProblem

__all__ = ["Catalog", "CatalogEntry", "CatalogProblem"]
