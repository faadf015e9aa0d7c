"""Accounts: users, their roles (buyer, staff, finance, admin) and buyer business profiles."""
