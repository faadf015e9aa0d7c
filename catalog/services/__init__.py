"""Catalog write services: each opens one transaction, changes the catalog, audits, commits."""
