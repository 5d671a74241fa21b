"""Self-contained HTML reports and SVG badges. See DESIGN.md section 1."""
