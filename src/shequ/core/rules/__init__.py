"""Rules: declarative conditions over device messages and twin state, evaluated by any worker."""
