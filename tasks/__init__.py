"""Task plugins: one folder per task (task.yaml + the code that builds its model and data)."""
