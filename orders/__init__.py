"""Orders: carts, quotes, checkout, allocation of order lines to batches, fulfilment."""
