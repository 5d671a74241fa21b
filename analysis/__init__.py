"""Statistics over the store (confidence intervals, comparisons, reproducibility, trends).

Pure functions over DataFrames read from the store; never runs a model. See DESIGN.md section 5.
"""
