"""The catalog: facilities, programmes, products, production batches and their makers."""
