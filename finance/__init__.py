"""Money: split rules, the append-only double-entry ledger, premi balances, payouts, PNBP."""
