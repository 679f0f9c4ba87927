"""Dev-only sample workbooks (the real format, the truth behind them)."""
