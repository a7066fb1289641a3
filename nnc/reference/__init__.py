"""Independent NumPy/SciPy implementations of every nnc layer, written from
the formulas of the user guide (docs/guide).  Tests compare the C core against them; nothing here
imports nnc._core."""
