"""Reading and validating the four book tables (models, accounts, holdings, prices)."""
