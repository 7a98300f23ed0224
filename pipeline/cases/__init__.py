"""Cases (issue 12): appended case events, retention that follows them, and the case checks."""
