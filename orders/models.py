"""Order tables. The bulk-orders issue fills this package; the catalog already counts allocations
on each batch (`Batch.quantity_allocated`), which is what stock on hand subtracts."""
