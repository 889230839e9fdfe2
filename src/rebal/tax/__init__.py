"""Tax layer of rebal: tax lots and their relief, tax rates, wash sales, loss harvesting.

Money here is `decimal.Decimal` (tax lots are few per account and exactness matters more than
vectorisation); dates are trade dates (`datetime.date`). Nothing reads the clock: every function
that depends on "today" takes an `as_of` argument.
"""
