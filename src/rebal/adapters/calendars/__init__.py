"""Market calendars from an exchange's published schedule (``exchange_calendars``)."""
