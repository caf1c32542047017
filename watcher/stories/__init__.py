"""Stories: grouping the same story from many outlets so it alerts once."""
