"""Quotes: a buyer asks for a quantity above stock or a custom specification; staff answer."""
