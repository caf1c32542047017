"""Rules: YAML watch rules, NLP analysis, matching and explanations."""
