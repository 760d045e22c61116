"""Test harnesses, not installed: the loopback world, daemon processes, realistic samples and a throwaway PostgreSQL."""
