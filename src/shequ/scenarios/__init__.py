"""The scenario packages shipped with shequ (S01–S20), each plugged in through the
``shequ.scenarios`` entry points like a vendor's would be."""
