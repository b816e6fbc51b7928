"""The trade journal: entries with derived P&L and R, the /journal command forms, statistics and use cases."""
