"""Cases (事, work orders) after GB/T 30428: registered, dispatched, handled, verified, closed."""
